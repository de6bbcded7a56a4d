"""Reading pages in worker processes: the same reading as in the crawler's own process."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from garment.scrape.reader import PageReader, ReadOptions, read_page

PRODUCT = """<!doctype html><html><head><title>Linen shirt</title>
<meta property="og:image" content="http://shop.test/img/42-front.jpg">
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Product",
 "name": "Linen shirt", "sku": "LS-42", "image": ["http://shop.test/img/42-front.jpg",
 "http://shop.test/img/42-worn.jpg"],
 "offers": {"@type": "Offer", "price": "39.90", "priceCurrency": "EUR"}}</script></head>
<body><main><h1>Linen shirt</h1><img src="/img/42-front.jpg?w=400" alt="Linen shirt">
<a href="/p/43?utm_source=x#top">Next</a><a href="/p/43">Next again</a><a href="/cart">Cart</a>
</main></body></html>"""

LISTING = """<!doctype html><html><body><h1>Shirts</h1>
""" + "".join(f'<a href="/p/{i}">Shirt {i}</a>' for i in range(30)) + """
<a href="/shirts?page=2">Next page</a></body></html>"""


def options(**kw: object) -> ReadOptions:
    import re

    return ReadOptions(deny=(re.compile(r"/cart\b"),), **kw)  # type: ignore[arg-type]


def test_read_page_gives_product_pictures_and_clean_links() -> None:
    reading = read_page(PRODUCT, "http://shop.test/p/42", options())
    assert reading.product is not None and reading.product["sku"] == "LS-42"
    assert reading.product["price"] == 39.9
    assert reading.pictures and reading.pictures[0].url.startswith("http://shop.test/img/42-front")
    assert reading.links == ["http://shop.test/p/43"]  # tracking, fragment, duplicate, cart gone
    assert reading.render is None and reading.over_cap == 0


def test_read_page_listing_pager_and_link_cap() -> None:
    reading = read_page(LISTING, "http://shop.test/shirts", options(max_links=10))
    assert reading.product is None
    assert reading.over_cap == 21 and len(reading.links) == 10
    full = read_page(LISTING, "http://shop.test/shirts", options())
    assert "http://shop.test/shirts?page=2" in full.pager


@pytest.mark.timeout(120)
def test_worker_process_reads_as_the_crawler_would_and_survives_a_lost_worker() -> None:
    reader = PageReader(options(), workers=1)
    try:
        async def read() -> object:
            return await reader.read(PRODUCT, "http://shop.test/p/42")

        inline = read_page(PRODUCT, "http://shop.test/p/42", options())
        first = asyncio.run(read())
        assert first.product == inline.product and first.links == inline.links  # type: ignore[attr-defined]
        assert [p.url for p in first.pictures] == [p.url for p in inline.pictures]  # type: ignore[attr-defined]
        (pid, cpu, peak), = [(p, *v) for p, v in reader.usage.items()]
        assert pid != os.getpid() and cpu > 0 and peak > 0
        os.kill(pid, signal.SIGKILL)  # a reader dies: pages are read here from then on
        again = asyncio.run(read())
        assert again.product == inline.product  # type: ignore[attr-defined]
        assert reader.pool is None
    finally:
        reader.close()


def test_no_workers_reads_in_this_process() -> None:
    reader = PageReader(options(), workers=0)
    reading = asyncio.run(reader.read(PRODUCT, "http://shop.test/p/42"))
    assert reader.pool is None and reading.product is not None and not reader.usage


@pytest.mark.timeout(120)
def test_packshot_checked_and_scored_in_a_worker_as_here(tmp_path: object) -> None:
    import io

    from PIL import Image

    from garment.scrape.images import check_and_score

    picture = Image.new("RGB", (120, 160), "white")
    picture.paste((20, 40, 160), (30, 30, 90, 130))  # one dark product on white
    out = io.BytesIO()
    picture.save(out, "JPEG")
    body = out.getvalue()
    here = check_and_score(body, 28, 4000, 100)
    assert here[0].status == "ok" and here[1] is not None
    for workers in (1, 0):
        reader = PageReader(options(), workers=workers)
        try:
            got = asyncio.run(reader.call(check_and_score, body, 28, 4000, 100))
            assert got[0] == here[0] and got[1] == here[1]
            assert bool(reader.usage) == (workers > 0)
        finally:
            reader.close()

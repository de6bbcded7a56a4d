"""Crawling the test shop over real HTTP on 127.0.0.1 (images on ``localhost``)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from garment.scrape import CrawlConfig, CrawlStats, child_env, command, crawl, prepare
from garment.store import Catalogue
from shopsite import ShopSite, make_jpeg

#: Packshot status of the special products (every other product: "ok").
EXPECTED_IMAGES = {11: "not_image", 13: "noai", 14: "noai", 15: "too_small", 17: "robots"}


def fast_config(shop: ShopSite, out: Path, **kw: object) -> CrawlConfig:
    # delay 0 and a short backoff keep the test quick; Retry-After is still honoured.
    settings: dict[str, object] = {"delay": 0.0, "concurrency": 4, "retry_backoff": 0.05,
                                   "timeout": 10.0, **kw}
    return CrawlConfig([shop.url], out=out, **settings)  # type: ignore[arg-type]


def product_id(url: str) -> int:
    return int(url.rstrip("/").split("/p/")[1].split("/")[0])


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ShopSite, Path,
                                                                        CrawlStats]]:
    shop = ShopSite().start()
    out = tmp_path_factory.mktemp("catalogue")
    events: list[dict[str, object]] = []
    stats = crawl(fast_config(shop, out), progress=events.append)
    assert events, "progress callback never called"
    yield shop, out, stats
    shop.stop()


def test_every_reachable_product_stored_once_with_its_packshot(crawled) -> None:  # type: ignore[no-untyped-def]
    shop, out, stats = crawled
    with Catalogue.open(out, create=False) as cat:
        products = cat.products()
        images = {img["product_id"]: img for img in cat.images()}
    ids = [product_id(p["canonical_url"]) for p in products]
    assert sorted(ids) == sorted(shop.page_ids)  # once each: /p/16/alt merged by sku
    assert stats.products >= len(ids)
    for p in products:
        i = product_id(p["canonical_url"])
        img = images[p["id"]]
        assert img["status"] == EXPECTED_IMAGES.get(i, "ok"), (i, img)
        assert p["name"] == f"Garment {i}" and p["price"] == pytest.approx(10.99 + i)
        assert p["currency"] == "EUR"
        assert p["extractor"] == ("jsonld", "microdata", "opengraph")[(i % 3 + 2) % 3]
        if img["status"] == "ok":
            data = (out / img["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == img["sha256"]
            assert Path(img["path"]).stem == img["sha256"]  # named by hash, not URL
            assert (img["width"], img["height"], img["format"]) == (200, 260, "jpeg")
            assert "logo" not in img["url"] and "pixel" not in img["url"]
    by_id = {product_id(p["canonical_url"]): p for p in products}
    assert by_id[10]["image_urls"][0].endswith("10-a.jpg")  # truncated: next one used
    assert images[by_id[10]["id"]]["url"].endswith("/img/10.jpg")
    assert images[by_id[12]["id"]]["final_url"].endswith("/img/12.jpg")  # redirect followed
    assert by_id[18]["sources"]["image_urls"] == "dom"
    assert by_id[16]["canonical_url"].endswith("/p/16")


def test_robots_and_site_boundaries(crawled) -> None:  # type: ignore[no-untyped-def]
    shop, _, stats = crawled
    pages = shop.requested("127.0.0.1")
    images = shop.requested("localhost")
    assert not [p for p in pages if p.startswith(("/private", "/cart"))]
    assert not [p for p in images if p.startswith("/img/private/")]
    assert {h.host for h in shop.hits} == {"127.0.0.1", "localhost"}
    # The image host served robots.txt and images only, never a page (/offsite is linked).
    assert all(p == "/robots.txt" or p.startswith("/img/") for p in images), images
    assert "/static/logo.png" not in images and not any("pixel" in p for p in images)
    assert stats.robots_forbidden >= 2  # /private/ links and the image under /img/private/
    assert f"/p/{shop.n_products + 1}" in pages  # only in the sitemap robots.txt names


def test_faults_are_recorded_not_raised(crawled) -> None:  # type: ignore[no-untyped-def]
    shop, out, stats = crawled
    with Catalogue.open(out, create=False) as cat:
        errors = {(e["reason"], e["url"].split(":", 2)[2].split("/", 1)[1])
                  for e in cat.errors()}
        run = cat.runs()[-1]
    assert ("http_500", "p/7") in errors and ("http_404", "p/404") in errors
    assert any(r == "redirect_loop" for r, _ in errors)
    assert ("corrupt", "img/10-a.jpg") in errors and ("not_image", "img/11.jpg") in errors
    assert stats.status_503 >= 1 and stats.retries >= 3  # /p/5 once, /p/7 twice
    assert stats.errors["http_500"] == 1 and stats.images["ok"] >= len(shop.page_ids) - 5
    # 503 with Retry-After: 1 -> the host waits a second before asking again.
    t5 = [h.at for h in shop.hits if h.path == "/p/5"]
    assert len(t5) == 2 and t5[1] - t5[0] >= 0.9
    assert run["status"] == "finished" and '"pages"' in run["stats"]


def test_cli_scrape_with_product_budget(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    shop = ShopSite().start()
    try:
        result = cli("scrape", shop.url, "--out", str(tmp_path), "--delay", "0",
                     "--concurrency", "4", "--max-products", "4")
    finally:
        shop.stop()
    assert result.exit_code == 0, result.output
    assert "products" in result.output and "catalogue.sqlite" in result.output
    with Catalogue.open(tmp_path, create=False) as cat:
        assert len(cat.products()) == 4
    config = tmp_path / "crawl-config.json"
    assert config.exists() and config.stat().st_mode & 0o077 == 0  # may hold passwords


def test_sigkill_half_way_then_resume(crawled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, full_out, _ = crawled
    shop = ShopSite(latency=0.03).start()
    try:
        config = fast_config(shop, tmp_path, concurrency=2)
        proc = subprocess.Popen(command(prepare(config)), env=child_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            with Catalogue.open(tmp_path) as cat:
                stored = len(cat.products())
            if stored >= 6:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL, "crawl ended before it could be killed"
        with Catalogue.open(tmp_path) as cat:
            before = {p["canonical_url"] for p in cat.products()}
            done = cat.done_urls()
        assert 6 <= len(before) < len(shop.page_ids)
        first_hit = len(shop.hits)

        crawl(fast_config(shop, tmp_path, concurrency=2, resume=True))
    finally:
        shop.stop()

    def summary(folder: Path) -> set[tuple[int, str, str | None]]:
        with Catalogue.open(folder, create=False) as cat:
            rows = cat.products_with_labels()
        return {(product_id(r["product_url"]), r["image_status"], r["sha256"]) for r in rows}

    after = summary(tmp_path)
    assert after == summary(full_out)  # same final catalogue, no duplicates
    assert len(after) == len(shop.page_ids)
    refetched = {h.path for h in shop.hits[first_hit:]}
    assert not [u for u in done if u.replace(shop.url, "/") in refetched]
    with Catalogue.open(tmp_path, create=False) as cat:
        assert [r["status"] for r in cat.runs()] == ["interrupted", "finished"]


def test_crawl_delay_is_a_floor_and_page_budget_holds(tmp_path: Path) -> None:
    shop = ShopSite(crawl_delay=0.4).start()
    try:
        stats = crawl(fast_config(shop, tmp_path, max_pages=3))
    finally:
        shop.stop()
    times = [h.at for h in shop.hits if h.host == "127.0.0.1"]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps and min(gaps) >= 0.3, gaps  # delay 0 asked, robots.txt's 0.4 s obeyed
    pages = [p for p in shop.requested("127.0.0.1") if "robots" not in p and "sitemap" not in p]
    assert stats.pages <= 3 and len(pages) <= 3, pages


class SharedPackshotShop(ShopSite):
    """Every product's packshot is one of three byte-identical images (as when a shop
    reuses a photo per colour); product 20 sells only a 40x52 thumbnail, product 21 names
    that thumbnail before its own photo."""

    def __post_init__(self) -> None:
        super().__post_init__()
        shared = [make_jpeg(100 + k) for k in range(3)]
        self.images = {i: shared[i % 3] for i in self.images}
        self.thumb = make_jpeg(20, (40, 52))

    def image_urls(self, i: int) -> list[str]:
        if i == 21:
            return [f"{self.img}/img/20.jpg", f"{self.img}/img/21.jpg"]
        return super().image_urls(i)

    def image_host(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/img/20.jpg":
            return 200, {"Content-Type": "image/jpeg"}, self.thumb
        return super().image_host(path)


def test_shared_packshots_at_concurrency_8_all_stored(tmp_path: Path) -> None:
    shop = SharedPackshotShop(n_products=60).start()
    try:
        stats = crawl(fast_config(shop, tmp_path, concurrency=8))
    finally:
        shop.stop()
    with Catalogue.open(tmp_path, create=False) as cat:
        products = {product_id(p["canonical_url"]): p for p in cat.products()}
        images = {img["product_id"]: img for img in cat.images()}
        errors = cat.errors()
    assert sorted(products) == sorted(shop.page_ids)  # none lost to a colliding write
    stored = {}
    for i, p in products.items():
        img = images[p["id"]]
        assert img["status"] == EXPECTED_IMAGES.get(i, "ok"), (i, img)
        if img["status"] == "ok":
            assert hashlib.sha256((tmp_path / img["path"]).read_bytes()).hexdigest() == \
                img["sha256"]
            stored[img["sha256"]] = img["path"]
    thumb = images[products[20]["id"]]
    assert (thumb["status"], thumb["width"], thumb["height"]) == ("ok", 40, 52)  # kept
    larger = images[products[21]["id"]]  # the thumbnail came first, the photo is larger
    assert (larger["url"], larger["width"]) == (f"{shop.img}/img/21.jpg", 200)
    files = sorted(p.relative_to(tmp_path).as_posix()
                   for p in (tmp_path / "images").rglob("*") if p.is_file())
    assert files == sorted(stored.values()) and len(files) == 4  # 3 shared + the thumbnail
    # /p/16/alt is the same product stored again (merged by sku): counted once more.
    assert stats.products >= len(products) and stats.images["ok"] >= len(
        [i for i in products if EXPECTED_IMAGES.get(i, "ok") == "ok"])
    assert not [e for e in errors if "FileNotFound" in (e["detail"] or "")]


class HostileShop(ShopSite):
    """Pages that name other services on the crawling machine as packshots, and one
    whose JSON-LD nests 200,000 deep. ``elsewhere`` is another loopback server (a stand-in
    for a database or an admin page) that must never be asked anything."""

    elsewhere = 0

    def image_urls(self, i: int) -> list[str]:
        other = f"http://127.0.0.1:{self.elsewhere}"
        if i == 3:  # straight to the other service
            return [f"{other}/img/3.jpg"]
        if i == 4:  # first candidate refused, the second (on the shop) used
            return [f"{other}/img/4.jpg", f"{self.img}/img/4.jpg"]
        if i == 6:  # the shop's image host redirects to the other service
            return [f"{self.img}/away/6.jpg"]
        if i == 8:  # a host name (resolved first) on the other service's port
            return [f"http://localhost:{self.elsewhere}/img/8.jpg"]
        return super().image_urls(i)

    def image_host(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/away/"):
            return 302, {"Location": f"http://127.0.0.1:{self.elsewhere}/img/6.jpg"}, b""
        return super().image_host(path)

    def product_page(self, i: int, alt: bool = False) -> str:
        html = super().product_page(i, alt)
        if i == 9:
            deep = "[" * 200_000 + "]" * 200_000
            html = html.replace("</head>", f"<script type='application/ld+json'>{deep}"
                                           "</script></head>")
        return html


def test_images_never_reach_other_services_and_deep_jsonld_is_counted(tmp_path: Path) -> None:
    elsewhere = ShopSite().start()  # any request it receives is a failure
    shop = HostileShop(n_products=12)
    shop.elsewhere = elsewhere.port
    shop.start()
    try:
        stats = crawl(fast_config(shop, tmp_path))
    finally:
        shop.stop()
        elsewhere.stop()
    assert elsewhere.hits == []
    with Catalogue.open(tmp_path, create=False) as cat:
        products = {product_id(p["canonical_url"]): p for p in cat.products()}
        ids = {p["id"]: i for i, p in products.items()}
        images = {ids[img["product_id"]]: img for img in cat.images()}
        errors = [(e["kind"], e["reason"], e["url"]) for e in cat.errors()]
    for i in (3, 6, 8):
        assert images[i]["status"] == "refused", images[i]
        assert "loopback" in images[i]["error"] and str(elsewhere.port) in images[i]["error"]
    assert images[4]["status"] == "ok" and images[4]["url"] == f"{shop.img}/img/4.jpg"
    assert stats.images["refused"] == 3 and stats.errors["image_refused"] == 4
    # The page with 200,000 nested brackets: not stored, not lost, one counted error.
    assert 9 not in products and stats.errors["jsonld_too_deep"] == 1
    assert ("page", "jsonld_too_deep", f"{shop.url}p/9") in errors
    assert sorted(products) == [i for i in shop.page_ids if i != 9]


def test_throttle_lets_not_found_pages_lower_the_delay_but_not_server_errors() -> None:
    from types import SimpleNamespace

    from scrapy.http import HtmlResponse

    from garment.scrape.polite import PoliteThrottle

    throttle = PoliteThrottle.__new__(PoliteThrottle)  # the delay rule alone, without a crawler
    throttle.target_concurrency, throttle.mindelay, throttle.maxdelay = 1.0, 0.0, 60.0
    for status, lowered in ((200, True), (404, True), (410, True), (503, False), (302, False)):
        slot = SimpleNamespace(delay=8.0)
        throttle._adjust_delay(slot, 0.05, HtmlResponse("http://shop.test/x", status=status))
        assert (slot.delay < 8.0) == lowered, status

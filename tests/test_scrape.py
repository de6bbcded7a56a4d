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
from shopsite import ShopSite

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
    assert (tmp_path / "crawl-config.json").exists()


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

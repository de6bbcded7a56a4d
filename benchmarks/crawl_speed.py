"""Crawl speed: garment (Scrapy, --delay 0 --concurrency 16) against a sequential crawler.

Both crawl the same local demo shop (default 2,000 products) whose server adds 50 ms to
every response, as a real shop's network would. The baseline is the plain loop many
scrapers are: fetch a page with urllib, parse it, queue its links, next; each product's
packshot fetched one at a time too. It uses garment's own extraction, so the two differ
in scheduling only. Fetching is the same cost for every page, so the baseline runs for
``--baseline-seconds`` and its rates are compared with garment's full crawl.

    python benchmarks/crawl_speed.py [--products 2000] [--latency-ms 50] [--json FILE]

Prints pages/s, images/s for both and garment's speed-up (target: at least 10x).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import tempfile
import time
import urllib.request
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from garment.scrape import CrawlConfig, crawl
from garment.scrape.extract import extract_product

# -- settings ----------------------------------------------------------------------------
PRODUCTS = 2000         # demo shop size
LATENCY_MS = 50.0       # added by the shop's server to every response
CONCURRENCY = 16        # garment: simultaneous requests per host
BASELINE_SECONDS = 30.0  # the sequential crawler's time budget (its rate is steady)

HREF = re.compile(r"""href=["']([^"'#]+)""")


def sequential_crawl(start: str, seconds: float, ua: str) -> dict[str, float]:
    """Breadth-first, one request at a time: page, parse, its packshot, next page."""
    host = urlsplit(start).netloc
    queue, seen = deque([start]), {start}
    pages = images = 0
    t0 = time.monotonic()
    while queue and time.monotonic() - t0 < seconds:
        url = queue.popleft()
        try:
            req = urllib.request.Request(url, headers={"User-Agent": ua})
            with urllib.request.urlopen(req, timeout=30) as resp:
                html = resp.read().decode("utf-8", "replace")
        except OSError:
            continue
        pages += 1
        product = extract_product(html, url)
        if product is not None and product.image_urls:
            try:
                req = urllib.request.Request(product.image_urls[0], headers={"User-Agent": ua})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    resp.read()
                images += 1
            except OSError:
                pass
        for href in HREF.findall(html):
            link = urljoin(url, href)
            if urlsplit(link).netloc == host and link not in seen and not re.search(
                    r"\.(css|js|jpg|png|svg|ico)$", link):
                seen.add(link)
                queue.append(link)
    elapsed = time.monotonic() - t0
    return {"pages": pages, "images": images, "seconds": round(elapsed, 2),
            "pages_per_s": round(pages / elapsed, 2), "images_per_s": round(images / elapsed, 2)}


def garment_crawl(start: str, out: Path, concurrency: int, render: str = "auto",
                  readers: int | None = None) -> dict[str, float]:
    t0 = time.monotonic()  # wall time, the child process's start-up included
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own0 = resource.getrusage(resource.RUSAGE_SELF)
    stats = crawl(CrawlConfig([start], out=out, delay=0.0, concurrency=concurrency, render=render,
                              readers=readers))
    elapsed = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own1 = resource.getrusage(resource.RUSAGE_SELF)
    # This process serves the shop meanwhile: on a real shop that load is elsewhere.
    server = (own1.ru_utime - own0.ru_utime) + (own1.ru_stime - own0.ru_stime)
    # The crawler's own CPU time (its process and threads): what it costs whatever else
    # runs on the machine, so it compares across runs where wall time does not.
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    cpu += stats.reader_cpu_s  # its page-reading processes, which it does not wait for
    ok = stats.images.get("ok", 0)
    return {"pages": stats.pages, "products": stats.products, "images": ok,
            "seconds": round(elapsed, 2), "pages_per_s": round(stats.pages / elapsed, 2),
            "images_per_s": round(ok / elapsed, 2), "errors": sum(stats.errors.values()),
            "crawler_cpu_s": round(cpu, 2), "shop_server_cpu_s": round(server, 2),
            "cpu_ms_per_page": round(1000 * cpu / max(stats.pages, 1), 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--products", type=int, default=PRODUCTS)
    ap.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY)
    ap.add_argument("--baseline-seconds", type=float, default=BASELINE_SECONDS)
    ap.add_argument("--render", choices=("auto", "never", "always"), default="auto",
                    help="garment's --render (auto: the default, a browser only where needed)")
    ap.add_argument("--readers", type=int, default=None,
                    help="garment's --readers (default: one per other core, up to 3)")
    ap.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = ap.parse_args(argv)

    from garment.scrape import DEFAULT_USER_AGENT
    from garment.shop import ShopConfig, start_shop

    config = ShopConfig(n_products=args.products, latency_ms=args.latency_ms, image_cache=5 * args.products)
    with start_shop(config) as shop, tempfile.TemporaryDirectory() as tmp:
        # A real shop's server runs on other machines: render its packshots before timing, so
        # that this machine's two cores go to the crawlers, not to drawing the photos.
        t0 = time.monotonic()
        n = shop.prerender()
        print(f"shop: {len(shop.products)} products at {shop.url}, +{args.latency_ms:g} ms "
              f"per response ({n} packshots rendered in advance, {time.monotonic() - t0:.1f} s)", flush=True)
        g = garment_crawl(shop.url, Path(tmp) / "catalogue", args.concurrency, args.render,
                          args.readers)
        print(f"garment    (--delay 0 --concurrency {args.concurrency}): {g['pages']} pages, "
              f"{g['images']} images in {g['seconds']} s: {g['pages_per_s']} pages/s, "
              f"{g['images_per_s']} images/s; crawler CPU {g['crawler_cpu_s']} s "
              f"({g['cpu_ms_per_page']} ms a page), the shop's server {g['shop_server_cpu_s']} s",
              flush=True)
        b = sequential_crawl(shop.url, args.baseline_seconds, DEFAULT_USER_AGENT)
        print(f"sequential (one request at a time): {b['pages']} pages, {b['images']} images "
              f"in {b['seconds']} s: {b['pages_per_s']} pages/s, {b['images_per_s']} images/s")
    ratio = {"pages": round(g["pages_per_s"] / max(b["pages_per_s"], 1e-9), 1),
             "images": round(g["images_per_s"] / max(b["images_per_s"], 1e-9), 1)}
    print(f"speed-up: {ratio['pages']}x pages/s, {ratio['images']}x images/s (target >= 10x)")
    if args.json:
        args.json.write_text(json.dumps({"products": args.products,
                                         "latency_ms": args.latency_ms, "garment": g,
                                         "sequential": b, "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

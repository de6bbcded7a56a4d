"""Screenshot of the review page for the README: docs/review-screenshot.png.

Runs ``garment demo`` (or reuses its folder), copies its catalogue to a temporary folder,
serves it with the review app on a free loopback port, opens the page in Debian's Chromium
(headless, through Playwright), corrects the least confident product with a key press, so
the picture shows a human label, and captures the page.

    python scripts/review_screenshot.py [--out demo-out] [--products 200] [--key 4]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from garment.demo import DemoConfig, run_demo
from garment.review import ReviewConfig, ReviewServer

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "demo-out", help="demo folder (left unchanged)")
    ap.add_argument("--products", type=int, default=200, help="built-in shop size")
    ap.add_argument("--key", default="", help="key pressed on the first card (1-0, o); empty: none")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--png", type=Path, default=REPO / "docs" / "review-screenshot.png")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    result = run_demo(DemoConfig(out=args.out, n_products=args.products))
    args.png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / result.out.resolve().name
        shutil.copytree(result.out, folder)
        server = ReviewServer(ReviewConfig(catalogue=folder, port=0)).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                page.goto(server.url, wait_until="load")
                page.wait_for_selector("body[data-ready='1']")
                if args.key:
                    page.keyboard.press(args.key)
                    page.wait_for_selector(".card.human")
                page.wait_for_function("() => [...document.images].filter(i => i.getBoundingClientRect().top "
                                       "< innerHeight).every(i => i.complete)")
                page.screenshot(path=str(args.png))
                browser.close()
        finally:
            server.stop()
    print(f"wrote {args.png} from {result.out}")


if __name__ == "__main__":
    main()

"""Screenshot of a demo report for the README: docs/report-screenshot.png.

Runs ``garment demo`` (or reuses its folder), opens the report in Debian's Chromium
(headless, through Playwright) and captures the page from the given section down.

    python scripts/report_screenshot.py [--out demo-out] [--section galleries] [--height 1560]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from garment.demo import DemoConfig, run_demo

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "demo-out", help="demo folder")
    ap.add_argument("--products", type=int, default=200, help="built-in shop size")
    ap.add_argument("--section", default="",
                    help="element id the capture starts at (summary, categories, galleries, "
                         "...); default: the top of the page")
    ap.add_argument("--height", type=int, default=1560, help="pixels captured")
    ap.add_argument("--png", type=Path, default=REPO / "docs" / "report-screenshot.png")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    result = run_demo(DemoConfig(out=args.out, n_products=args.products))
    args.png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": args.height})
        page.goto(result.report.resolve().as_uri(), wait_until="load")
        if args.section:
            top = page.eval_on_selector(f"#{args.section}", "e => e.getBoundingClientRect().top")
            page.evaluate(f"window.scrollTo(0, {max(0, top - 12)})")
        page.screenshot(path=str(args.png))
        browser.close()
    print(f"wrote {args.png} from {result.report}")


if __name__ == "__main__":
    main()

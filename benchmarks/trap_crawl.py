"""Trap crawl: garment against a hostile shop, with its default crawl limits and with them off.

The shop (tests/trapshop.py, on 127.0.0.1) hides 60 real products among traps that never
end: a calendar linking each day to the next, a listing whose ``?page=N`` always has a
next page, paths that mint a new session id on every visit, a search whose every result
links a longer search, and a page with 100,000 links. With its limits garment must end by
itself (target: within 5 minutes at --delay 0, every product stored, peak memory under
600 MB); with them off, the crawl is stopped at a hard time cap and its figures at that
point are the baseline.

    python benchmarks/trap_crawl.py [--concurrency 8] [--cap-seconds 60] [--json FILE]

Prints, for both crawls: time, pages, products stored, the crawler's peak memory (the
Scrapy child's peak RSS, from wait4) and this process's (the caller plus the shop server).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from garment.scrape import CrawlConfig, child_env, command, prepare
from garment.store import Catalogue

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from trapshop import TrapShop  # noqa: E402

# -- settings ----------------------------------------------------------------------------
CONCURRENCY = 8          # requests at once per host
LIMITED_SECONDS = 300.0  # the limited crawl must end by itself well within this (target)
CAP_SECONDS = 60.0       # the unlimited crawl is stopped here (it never ends by itself)
MB = 1024                # ru_maxrss is in KiB on Linux

#: Every limit off: what the crawler did before it had any.
NO_LIMITS = {"max_pages": None, "max_depth": 0, "max_barren_hops": 0, "max_query_variants": 0,
             "max_id_variants": 0, "max_segment_repeats": 0, "max_links_per_page": 0}


def run_crawl(config: CrawlConfig, cap: float) -> dict[str, Any]:
    """Run the crawler child on ``config``; stop it (SIGTERM, then SIGKILL) past ``cap``
    seconds. Returns time, pages, products, whether it ended by itself, and its peak RSS."""
    proc = subprocess.Popen(command(prepare(config)), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=child_env(), text=True)
    last: dict[str, Any] = {}

    def read() -> None:  # progress lines, the last one kept; also drains the pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "progress":
                last.update(event)
            elif event.get("event") == "done":
                last["stats"] = event["stats"]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    t0 = time.monotonic()
    ended, stopped = True, 0.0
    while _alive(proc.pid):  # not poll(): it would reap the child, and its rusage with it
        if time.monotonic() - t0 > cap:
            ended, stopped = False, time.monotonic() - t0
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and _alive(proc.pid):
                time.sleep(0.1)
            if _alive(proc.pid):
                proc.kill()
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    rusage = _reap(proc)
    reader.join(timeout=10)
    with Catalogue.open(config.out, create=False) as cat:
        products = len(cat.products())
    stats = last.get("stats") or {}
    # A stopped crawl is timed to its stop signal (its pages are counted up to its exit).
    return {"ended_by_itself": ended, "seconds": round(stopped or elapsed, 1),
            "exit_seconds": round(elapsed, 1),
            "pages": stats.get("pages", last.get("pages", 0)), "products": products,
            "crawler_peak_mb": round(rusage / MB, 1),
            # its page readers (worker processes): each one's peak, added up
            "readers_peak_mb": round(stats.get("readers", 0) * stats.get("reader_peak_mb", 0.0), 1),
            "skipped": stats.get("skipped", {})}


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended; it is reaped by ``_reap``)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _reap(proc: subprocess.Popen[str]) -> int:
    """Wait for the child and return its own peak RSS (KiB), which Popen.wait drops."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY)
    ap.add_argument("--cap-seconds", type=float, default=CAP_SECONDS,
                    help="Hard time cap of the crawl without limits.")
    ap.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = ap.parse_args(argv)

    results: dict[str, Any] = {}
    with TrapShop() as shop, tempfile.TemporaryDirectory() as tmp:
        print(f"trap shop: {shop.n_products} products among traps at {shop.url}", flush=True)
        for name, limits, cap in (("limits", {}, LIMITED_SECONDS),
                                  ("no limits", NO_LIMITS, args.cap_seconds)):
            config = CrawlConfig([shop.url], out=Path(tmp) / name.replace(" ", "-"),
                                 delay=0.0, concurrency=args.concurrency, **limits)
            r = run_crawl(config, cap)
            results[name] = r
            how = "ended by itself" if r["ended_by_itself"] else f"stopped at the {cap:g} s cap"
            print(f"{name:9}: {how} after {r['seconds']} s: {r['pages']:,} pages, "
                  f"{r['products']}/{shop.n_products} products, crawler peak "
                  f"{r['crawler_peak_mb']:.0f} MB + page readers {r['readers_peak_mb']:.0f} MB",
                  flush=True)
            for reason, sections in r["skipped"].items():
                top = ", ".join(f"{s} {n:,}" for s, n in list(sections.items())[:3])
                print(f"           skipped ({reason}): {sum(sections.values()):,} URLs ({top})")
        parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MB
    on, off = results["limits"], results["no limits"]
    print(f"this process (caller + shop server) peak: {parent:.0f} MB; whole crawl with "
          f"limits at most {on['crawler_peak_mb'] + on['readers_peak_mb'] + parent:.0f} MB "
          "(target < 600 MB)")
    rate_on = on["pages"] / max(on["seconds"], 1e-9)
    rate_off = off["pages"] / max(off["seconds"], 1e-9)
    print(f"baseline ratio: without limits {off['pages']:,} pages in {off['seconds']} s "
          f"({rate_off:.0f} pages/s, {off['products']} products) and still going; with "
          f"limits {on['pages']:,} pages in {on['seconds']} s ({rate_on:.0f} pages/s), all "
          f"{on['products']} products; crawler memory {off['crawler_peak_mb']:.0f} MB vs "
          f"{on['crawler_peak_mb']:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps({**results, "parent_peak_mb": round(parent, 1)},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

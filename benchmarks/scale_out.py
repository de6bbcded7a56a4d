"""Scale-out: 1, 2 and 4 crawler processes on one Redis frontier against several shops.

Each shop is the demo shop on its own server on 127.0.0.1 (its own port: its own host for
politeness), adding ``--latency-ms`` to every response; every crawl keeps ``--delay``
seconds between requests to each shop across all its workers (the frontier's shared host
slots) and ``--concurrency`` requests at once per host in each worker. One worker is
then bounded by its own concurrency over the shops' latency, as a real crawler is by
its own CPU and connections; more workers share the same frontier, catalogue and slots.

Every run starts with an empty frontier and catalogue (a SQLite folder the workers share)
and is timed from starting the workers to the last one ending (start-up and the frontier's
end-of-crawl grace included); "steady" is the rate between 10% and 90% of the products
stored. Redis round trips per product are counted in the one-worker run by the worker
(redis-py connection) and from the server's ``INFO commandstats`` (commands, script
internals included).

    python benchmarks/scale_out.py [--shops 4] [--products 80] [--workers 1,2,4]
                                   [--frontier redis://127.0.0.1:6379/15] [--json FILE]

Without --frontier a private redis-server is started on 127.0.0.1 (a free port, a
temporary folder) and stopped at the end. Target: 4 workers >= 3x one worker's products/s.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

# -- settings ----------------------------------------------------------------------------
SHOPS = 4             # shops, each its own server (host:port)
PRODUCTS = 80         # products per shop
LATENCY_MS = 300.0    # added by each shop's server to every response
DELAY = 0.05          # seconds between requests to one shop, across all workers
CONCURRENCY = 2       # requests at once per host, per worker
WORKERS = (1, 2, 4)
RUN_TIMEOUT = 400.0   # seconds one run may take before its workers are killed


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server on 127.0.0.1 (no persistence); its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server missing: apt-get install redis-server, or give --frontier")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--dir",
                             str(folder), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("redis-server did not start")


def commandstats(client: Any) -> int:
    return sum(int(v["calls"]) for v in client.info("commandstats").values())


def stored(out: Path) -> int:
    from garment.store import Catalogue

    try:
        with Catalogue.open(out) as cat:
            return int(cat.conn.execute("SELECT COUNT(*) FROM products").fetchone()[0])
    except Exception:  # the workers create it: not there yet
        return 0


def run(workers: int, shops: list[Any], url: str, folder: Path, args: argparse.Namespace
        ) -> dict[str, Any]:
    """One crawl of every shop by ``workers`` processes on an empty frontier."""
    from garment.scrape import CrawlConfig, child_env, command, frontier, prepare

    frontier.reset(url)
    out = folder / f"catalogue-{workers}"
    config = CrawlConfig([s.url for s in shops], out=out, delay=args.delay,
                         concurrency=args.concurrency, max_pages=None, frontier=url,
                         log_level="INFO")
    config_path = prepare(config)
    client = frontier.connect(url)
    calls0 = commandstats(client)
    t0 = time.monotonic()
    logs = [folder / f"w{workers}-{i}.log" for i in range(workers)]
    procs = []
    for log in logs:
        with open(log, "wb") as err:
            procs.append(subprocess.Popen(command(config_path), env=child_env(),
                                          stdout=subprocess.DEVNULL, stderr=err))
    expected = sum(len(s.products) for s in shops)
    marks: dict[float, float] = {}
    while any(p.poll() is None for p in procs):
        if time.monotonic() - t0 > RUN_TIMEOUT:
            for p in procs:
                p.kill()
            break
        n = stored(out)
        for share in (1 / expected, 0.1, 0.9, 1.0):
            if share not in marks and n >= share * expected:
                marks[share] = time.monotonic()
        time.sleep(0.25)
    wall = time.monotonic() - t0
    calls = commandstats(client) - calls0
    client.close()
    products = stored(out)
    trips = [int(m.group(1)) for log in logs if (m := re.search(
        r"'frontier/redis_round_trips': (\d+)", log.read_text(errors="replace")))]
    steady = (0.8 * expected / (marks[0.9] - marks[0.1])
              if 0.1 in marks and 0.9 in marks and marks[0.9] > marks[0.1] else None)
    return {"workers": workers, "products": products, "expected": expected,
            "seconds": round(wall, 1), "products_per_s": round(products / wall, 2),
            "steady_products_per_s": None if steady is None else round(steady, 2),
            # seconds from the start to the first, 10%, 90% and last product stored
            "timeline_s": {f"{share:.0%}" if share >= 0.1 else "first": round(t - t0, 1)
                           for share, t in sorted(marks.items())},
            "exit_codes": [p.returncode for p in procs],
            "redis_round_trips": sum(trips), "redis_commands": calls}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shops", type=int, default=SHOPS)
    ap.add_argument("--products", type=int, default=PRODUCTS, help="per shop")
    ap.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    ap.add_argument("--delay", type=float, default=DELAY)
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY)
    ap.add_argument("--workers", default=",".join(map(str, WORKERS)))
    ap.add_argument("--frontier", help="Redis URL (its database is emptied); default: a "
                                       "private redis-server")
    ap.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = ap.parse_args(argv)

    from garment.shop import ShopConfig, start_shop

    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.frontier
        if url is None:
            proc, url = start_redis(folder)
            stack.callback(proc.wait, 10)
            stack.callback(proc.terminate)
        shops = [stack.enter_context(start_shop(ShopConfig(
            n_products=args.products, latency_ms=args.latency_ms, seed=i,
            image_cache=4 * args.products))) for i in range(args.shops)]
        for shop in shops:  # the shops' own drawing stays out of the timed crawls
            shop.prerender()
        print(f"{args.shops} shops x {args.products} products, +{args.latency_ms:g} ms a "
              f"response, delay {args.delay:g} s per shop, concurrency {args.concurrency} "
              f"per host and worker; frontier {url}", flush=True)
        rows = []
        for workers in [int(w) for w in args.workers.split(",")]:
            row = run(workers, shops, url, folder, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = rows[0]
    print(f"\n{'workers':>7} {'products':>9} {'seconds':>8} {'products/s':>11} "
          f"{'x one':>6} {'steady/s':>9} {'x one':>6}")
    for r in rows:
        ratio = r["products_per_s"] / max(base["products_per_s"], 1e-9)
        steady = r["steady_products_per_s"] or 0.0
        sratio = steady / max(base["steady_products_per_s"] or 1e-9, 1e-9)
        print(f"{r['workers']:>7} {r['products']:>4}/{r['expected']:<4} {r['seconds']:>8} "
              f"{r['products_per_s']:>11} {ratio:>6.2f} {steady:>9} {sratio:>6.2f}")
    if base["workers"] == 1 and base["products"]:
        print(f"\none worker: {base['redis_round_trips'] / base['products']:.1f} Redis round "
              f"trips and {base['redis_commands'] / base['products']:.1f} Redis commands "
              f"(script internals included) per product stored")
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": None,
                                                                   "frontier": None},
                                         "runs": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Store: the time to save N products (with their packshot rows) into a new catalogue, on
SQLite and on PostgreSQL, one writer, as a crawl does (one transaction per product); the
statements each saved product sends (``Catalogue.statements``) and, on PostgreSQL, the
network round trips of 100 more products as libpq's own trace shows them
(``garment.store.postgres.traced_round_trips``).

    python benchmarks/store_save.py [--products 10000] [--postgres postgresql://USER@HOST/DB]
                                    [--json FILE]

Without --postgres a private PostgreSQL is started on 127.0.0.1 (a free port, a temporary
folder, fsync off as in the tests; as the ``postgres`` user when root) and stopped at the
end. --postgres must name an empty database.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# -- settings ----------------------------------------------------------------------------
PRODUCTS = 10_000  # products saved per backend
TRACED = 100       # products saved afterwards with libpq's trace on (PostgreSQL)
SITE = "http://shop.test"


def product(n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A product as the crawler stores it, and its packshot's row."""
    url = f"{SITE}/p/{n}"
    return ({"url": url, "canonical_url": url, "sku": f"S{n}", "name": f"Item {n}", "brand": "Brand",
             "price": 19.99, "currency": "EUR", "category": "Women > Dresses", "description": "A dress. " * 20,
             "availability": "InStock", "image_urls": [f"{SITE}/img/{n}.jpg"], "extractor": "jsonld",
             "sources": {"name": "jsonld", "price": "jsonld"}},
            {"url": f"{SITE}/img/{n}.jpg", "status": "ok", "path": f"images/{n:064x}"[:60] + ".jpg",
             "width": 600, "height": 800, "format": "jpeg", "sha256": f"{n:064x}", "bytes": 54321,
             "content_type": "image/jpeg", "choice": json.dumps({"score": 1.0})})


def save(target: str | Path, n: int) -> dict[str, Any]:
    """Save ``n`` products into the new catalogue ``target``; seconds, rate, round trips."""
    from garment.store import Catalogue

    with Catalogue.open(target) as cat:
        run = cat.start_run({"benchmark": "store_save"})
        trips = cat.statements
        started = time.perf_counter()
        for i in range(n):
            cat.save_product(*product(i), run_id=run)
        seconds = time.perf_counter() - started
        trips = cat.statements - trips
        result = {"products": n, "seconds": round(seconds, 2), "products_per_s": round(n / seconds, 1),
                  "statements_per_product": round(trips / n, 2)}
        if hasattr(cat, "url"):  # PostgreSQL: count the round trips on the wire
            from garment.store.postgres import traced_round_trips

            with traced_round_trips(cat) as traced:
                for i in range(n, n + TRACED):
                    cat.save_product(*product(i), run_id=run)
            result["round_trips_per_product"] = round(traced[0] / TRACED, 2)
        assert cat.counts()["products"] == n + (TRACED if hasattr(cat, "url") else 0)
    return result


def start_postgres(folder: Path, stack: ExitStack) -> str:
    """A private PostgreSQL on 127.0.0.1 (the test fixtures' settings); an empty database's URL."""
    import os

    import psycopg

    import services

    bindir = services._pg_bin()
    if bindir is None:
        sys.exit("PostgreSQL missing: apt-get install postgresql, or give --postgres")
    uid, gid = services._as_postgres_user()
    if uid is not None:
        os.chown(folder, uid, gid or -1)

    def as_user() -> None:
        if uid is not None:
            os.setgid(gid or 0)
            os.setuid(uid)

    subprocess.run([str(bindir / "initdb"), "-D", str(folder / "data"), "-U", "garment", "--auth=trust",
                    "--encoding=UTF8", "--no-sync"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, preexec_fn=as_user, cwd=folder)
    port = services.free_port()
    log = folder / "postgres.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(bindir / "postgres"), "-D", str(folder / "data"), "-p", str(port),
                                 "-h", "127.0.0.1", "-k", str(folder), "-c", "fsync=off",
                                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                                stdout=out, stderr=subprocess.STDOUT, preexec_fn=as_user, cwd=folder)
    stack.callback(services._stop, proc)
    services._wait_port(port, proc, "postgres", log)
    deadline = time.monotonic() + 30
    while True:  # TCP is accepted a moment before logins are
        try:
            with psycopg.connect(f"postgresql://garment@127.0.0.1:{port}/postgres", autocommit=True) as admin:
                name = "bench_" + uuid.uuid4().hex[:8]
                admin.execute(f'CREATE DATABASE "{name}"')
            return f"postgresql://garment@127.0.0.1:{port}/{name}"
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=PRODUCTS)
    parser.add_argument("--postgres", help="an empty database (default: a private server)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    from garment.store import target

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="garment-store-") as tmp:
        folder = Path(tmp)
        if args.postgres:
            url = args.postgres
        else:  # a folder of its own: PostgreSQL may run as another user
            pg = Path(tempfile.mkdtemp(prefix="garment-pg-"))
            stack.callback(shutil.rmtree, pg, True)
            url = start_postgres(pg, stack)
        results = {"sqlite": save(folder / "catalogue", args.products),
                   "postgres": save(target(url, folder / "files"), args.products)}
    print(f"{'backend':<10} {'products':>9} {'seconds':>8} {'products/s':>11} {'statements/product':>19} "
          f"{'round trips/product':>20}")
    for name, r in results.items():
        trips = r.get("round_trips_per_product")
        print(f"{name:<10} {r['products']:>9} {r['seconds']:>8.2f} {r['products_per_s']:>11.1f} "
              f"{r['statements_per_product']:>19.2f} {'-' if trips is None else f'{trips:.2f}':>20}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

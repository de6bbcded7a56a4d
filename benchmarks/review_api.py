"""Review API latency on a large catalogue: a page of the least confident products, a
filtered search, one correction and one accepted page, on N synthetic products.

The app keeps the catalogue's rows in memory and reads them again only when another
connection commits (its own changes reread just the rows they touch); each request filters
and sorts every row in Python, so the time still grows with the catalogue. The catalogue is
made here (products, packshot rows, image answers, fused labels; no image files: the list
never opens them). Requests go through Starlette's in-process TestClient, so the figures
are the app's, without a network.

    python benchmarks/review_api.py [--products 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from garment import CLASSES
from garment.store import Catalogue, Prediction


def build(folder: Path, n: int) -> None:
    with Catalogue.open(folder) as cat:
        preds, labels = [], []
        for i in range(n):
            label = CLASSES[i % 10]
            conf = ((i * 7919) % 1000) / 1000
            pid, iid = cat.save_product(
                {"url": f"http://shop.test/p/{i}", "canonical_url": f"http://shop.test/p/{i}", "sku": f"S{i}",
                 "name": f"Product {i} {label}", "category": f"Dept {i % 5} > {label}", "extractor": "jsonld",
                 "image_urls": [], "sources": {}},
                {"url": f"http://cdn.test/{i}.jpg", "status": "ok", "path": f"images/{i}.jpg", "width": 60,
                 "height": 80, "format": "jpeg", "sha256": f"{i:064x}", "bytes": 10})
            assert iid is not None
            preds.append(Prediction(iid, label, i % 10, conf, [(label, conf)]))
            labels.append({"product_id": pid, "label": label, "label_index": i % 10, "confidence": conf,
                           "label_source": "image", "conflict": False})
        cat.record_predictions("bench", preds)
        cat.record_labels("bench", labels)


def timed(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from garment.review import ReviewConfig, create_app

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        build(folder, args.products)
        print(f"{args.products} products written in {time.perf_counter() - t:.1f} s")
        app = create_app(ReviewConfig(catalogue=folder, token="t"))
        with TestClient(app, base_url="http://127.0.0.1", headers={"X-Garment-Token": "t"}) as c:
            page = c.get("/api/products").json()["items"]
            ids = [it["id"] for it in page]
            cases = {
                "GET /api/products (48 least confident)": lambda: c.get("/api/products"),
                "GET /api/products?q=dress&max_conf=0.5": lambda: c.get("/api/products",
                                                                        params={"q": "dress", "max_conf": "0.5"}),
                "PUT /api/products/ID/label": lambda: c.put(f"/api/products/{ids[0]}/label", json={"label": "Bag"}),
                # Each repeat accepts the page afresh: the undo takes the previous one back.
                "POST /api/accept (48 ids), then POST /api/undo": lambda: (
                    c.post("/api/accept", json={"ids": ids}), c.post("/api/undo"))[1],
            }
            for name, fn in cases.items():
                print(f"{name}: {timed(fn, args.repeats):.0f} ms (median of {args.repeats})")


if __name__ == "__main__":
    main()

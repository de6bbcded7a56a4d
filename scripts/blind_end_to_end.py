"""Shop-adaptive labels, measured end to end on a blind shop of labelled photos.

    python scripts/blind_end_to_end.py ../shared/realphotos-dev [--json r.json] [--keep DIR]

Serves the photos as a blind demo shop on 127.0.0.1 (pages carry only the retailer's name and
description and a coarse department, never the class), crawls it with ``garment scrape``'s
library, classifies the catalogue with the shipped model (image and text fused), adapts a model
to the shop (``garment adapt``), classifies again with it, and scores every view of the labels
against the truth in the folder's labels.csv, which garment itself never reads: text only, image
only (shipped), fused (shipped), adapted image only, fused (adapted), overall and per retailer.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from garment import CLASSES, label_index
from garment.catalogue_classify import classify_catalogue
from garment.labels.adapt import AdaptConfig, adapt_catalogue
from garment.scrape import CrawlConfig, crawl
from garment.shop import ShopConfig, start_shop
from garment.store import Catalogue


def _truth(root: Path, shop_products: list[Any]) -> dict[str, tuple[int, str]]:
    """sku -> (true label index, retailer), from the shop's own products and labels.csv."""
    rows = {str((root / r["file"]).resolve()): r for r in csv.DictReader((root / "labels.csv").open(encoding="utf-8"))}
    out = {}
    for p in shop_products:
        r = rows.get(str(Path(p.image_path).resolve()))
        if r is not None:
            out[p.sku] = (int(r["label_index"]), r.get("retailer") or "all")
    return out


def _score(rows: list[dict[str, Any]], truth: dict[str, tuple[int, str]], key: str,
           only: set[int] | None = None) -> dict[str, dict[str, Any]]:
    """Accuracy of column ``key`` per retailer: overall (with "other"; no label is wrong), in-scope
    (products of the ten classes), coverage (share with a label) and precision (right when labelled)."""
    acc: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        t = truth.get(r["sku"])
        if t is None or (only is not None and r["product_id"] not in only):
            continue
        y, retailer = t
        pred = label_index(r.get(key)) if key != "image_argmax" else (
            CLASSES.index(r["top3"][0][0]) if r.get("top3") else None)
        for group in ("all", retailer):
            a = acc[group]
            a["n"] += 1
            a["labelled"] += pred is not None
            a["right"] += pred == y
            if y >= 0:
                a["in_n"] += 1
                a["in_right"] += pred == y
    out = {}
    for group, a in acc.items():
        out[group] = {"n": a["n"], "overall": a["right"] / a["n"], "in_scope": a["in_right"] / max(1, a["in_n"]),
                      "coverage": a["labelled"] / a["n"], "precision": a["right"] / max(1, a["labelled"])}
    return out


def run(root: Path, work: Path, adapt_config: AdaptConfig) -> dict[str, Any]:
    catalogue = work / "catalogue"
    t0 = time.perf_counter()
    with start_shop(ShopConfig(images=root, blind=True)) as shop:
        stats = crawl(CrawlConfig([shop.url], out=catalogue, delay=0.0, concurrency=8, log_level="WARNING"))
        truth = _truth(root, shop.products)
    timings = {"crawl_s": round(time.perf_counter() - t0, 1)}
    t0 = time.perf_counter()
    base = classify_catalogue(catalogue)
    timings["classify_s"] = round(time.perf_counter() - t0, 1)
    with Catalogue.open(catalogue, create=False) as cat:
        base_rows = cat.products_with_labels(base.model_id)
    t0 = time.perf_counter()
    adapted = adapt_catalogue(catalogue, config=adapt_config)
    timings["adapt_s"] = round(time.perf_counter() - t0, 1)
    after = classify_catalogue(catalogue)
    with Catalogue.open(catalogue, create=False) as cat:
        rows = cat.products_with_labels(after.model_id)
    untrained = set(adapted.untrained_product_ids)
    views = {
        "text only": _score(base_rows, truth, "text_label"),
        "image only, shipped model (argmax)": _score(base_rows, truth, "image_argmax"),
        "image only, shipped model": _score(base_rows, truth, "image_label"),
        "fused, shipped model": _score(base_rows, truth, "label"),
        "image only, adapted model (argmax)": _score(rows, truth, "image_argmax"),
        "image only, adapted model": _score(rows, truth, "image_label"),
        "fused, adapted model": _score(rows, truth, "label"),
        # The packshots the fine-tuning never saw (held out, or without a confident text label):
        "never trained on: shipped model (argmax)": _score(base_rows, truth, "image_argmax", untrained),
        "never trained on: adapted model (argmax)": _score(rows, truth, "image_argmax", untrained),
        "never trained on: fused, adapted model": _score(rows, truth, "label", untrained),
    }
    return {"products": len(rows), "crawl": {"products": stats.products, "pages": stats.pages},
            "timings": timings, "views": views,
            "adaptation": {k: v for k, v in adapted.as_dict().items() if k != "untrained_product_ids"},
            "sources": dict(after.sources), "conflicts": after.conflicts}


def _print(result: dict[str, Any]) -> None:
    groups = sorted({g for v in result["views"].values() for g in v}, key=lambda g: (g != "all", g))
    print(f"{result['products']} products; crawl {result['timings']['crawl_s']} s, adapt "
          f"{result['timings']['adapt_s']} s; final sources {result['sources']}, conflicts {result['conflicts']}")
    a = result["adaptation"]
    print(f"adapted: held-out {a['holdout_accuracy']:.1%} (base {a['base_holdout_accuracy']:.1%}), "
          f"Fashion-MNIST {a['fashion_mnist_accuracy']:.2%}")
    for g in groups:
        print(f"\n{g}: {'view':<42} {'overall':>8} {'in-scope':>9} {'coverage':>9} {'precision':>10}")
        for name, v in result["views"].items():
            s = v.get(g)
            if s:
                print(f"{'':<{len(g) + 2}}{name:<42} {s['overall']:>8.1%} {s['in_scope']:>9.1%} "
                      f"{s['coverage']:>9.1%} {s['precision']:>10.1%}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path, help="folder with labels.csv (file,label,label_index,retailer,product_text)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--keep", type=Path, help="work in this folder (kept) instead of a temporary one")
    ap.add_argument("--steps", type=int, default=AdaptConfig.steps, help="adaptation steps")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not (args.photos / "labels.csv").is_file():
        print(f"error: {args.photos}/labels.csv not found; pass a folder of labelled photos", file=sys.stderr)
        return 2
    cfg = AdaptConfig(steps=args.steps, seed=args.seed)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args.photos, args.keep, cfg)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(args.photos, Path(tmp), cfg)
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

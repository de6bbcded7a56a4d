"""Coverage and precision of garment's text labels on the dev photos' texts and the real pages.

Coverage: the share of products given a label (a class or "other"); precision: the share of
those that are right. Measured on ``realphotos-dev/labels.csv``'s ``product_text`` ("name |
description" for H&M, the name alone for Myntra), for the name alone and name + description,
each without and with ``source_type`` (the retailer's own product type) as the category; and on
the saved real pages of ``realpages``, extracted with garment's own extractor, against
``scripts/realpages_classes.csv`` (the class of each page, read off the page by hand).

    python scripts/text_label_coverage.py [--shared ../shared] [--labels-map FILE] [--json out.json] [--errors]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from garment import CLASSES, OTHER
from garment.labels.text import TextLabel, TextLabeller
from garment.labels.vocab import SNAKE

ROOT = Path(__file__).resolve().parents[1]
SETUPS = {  # name -> (use description, use source_type as category)
    "name": (False, False),
    "name+description": (True, False),
    "name+type": (False, True),
    "name+description+type": (True, True),
}


class Tally:
    """Counts of products, labelled ones and right ones, by group."""

    def __init__(self) -> None:
        self.n: Counter[str] = Counter()
        self.labelled: Counter[str] = Counter()
        self.right: Counter[str] = Counter()

    def add(self, groups: list[str], truth: str, got: TextLabel) -> None:
        for g in groups:
            self.n[g] += 1
            if got.label is not None:
                self.labelled[g] += 1
                self.right[g] += got.label == truth

    def row(self, g: str) -> dict[str, Any]:
        n, lab, right = self.n[g], self.labelled[g], self.right[g]
        return {"n": n, "labelled": lab, "right": right, "coverage": lab / n if n else None,
                "precision": right / lab if lab else None}


def _pct(x: float | None) -> str:
    return "    -" if x is None else f"{100 * x:5.1f}"


def _table(title: str, rows: dict[str, dict[str, Any]]) -> str:
    out = [f"\n{title}", f"  {'':<24}{'n':>5} {'cover%':>7} {'prec%':>6}"]
    for g, r in rows.items():
        out.append(f"  {g:<24}{r['n']:>5} {_pct(r['coverage']):>7} {_pct(r['precision']):>6}")
    return "\n".join(out)


def dev_texts(labels_csv: Path, labeller: TextLabeller, errors: list[str]) -> dict[str, Any]:
    """Every setup's coverage/precision, overall, per retailer and per true class."""
    with labels_csv.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    result: dict[str, Any] = {}
    for setup, (use_desc, use_type) in SETUPS.items():
        tally = Tally()
        for r in rows:
            truth = SNAKE.get(r["label"], OTHER)
            name, _, desc = r["product_text"].partition(" | ")
            category = r["source_type"].partition("=")[2] if use_type else None
            got = labeller.label(name=name, description=desc if use_desc else None, category=category)
            tally.add(["all", f"retailer {r['retailer']}", f"class {truth}"], truth, got)
            if got.label is not None and got.label != truth and setup == "name+description":
                errors.append(f"{r['file']}: truth {truth}; {got.evidence()} ({got.confidence:.2f})")
        result[setup] = {g: tally.row(g) for g in sorted(tally.n, key=_order)}
    return result


def _order(g: str) -> tuple[int, int, str]:
    kind, _, rest = g.partition(" ")
    classes = [*CLASSES, OTHER]
    return ({"all": 0, "retailer": 1, "class": 2}[kind], classes.index(rest) if rest in classes else 0, rest)


def real_pages(pages_dir: Path, truth_csv: Path, labeller: TextLabeller, errors: list[str]) -> dict[str, Any]:
    """Extract each saved page with garment's extractor, label it, compare with the hand-made class."""
    from garment.scrape.extract import extract_product

    urls = {p["file"]: p["url"] for p in json.loads((pages_dir / "pages.json").read_text())}
    with truth_csv.open(newline="", encoding="utf-8") as f:
        truth = {r["file"]: r for r in csv.DictReader(f)}
    with (pages_dir / "manifest.csv").open(newline="", encoding="utf-8") as f:
        files = [r["file"] for r in csv.DictReader(f)]
    tally = Tally()
    pages = []
    for file in files:
        t = truth[file]
        product = extract_product((pages_dir / "pages" / file).read_bytes(), urls[file])
        fields = product.as_dict() if product else {"url": urls[file]}
        got = labeller.label_product(fields)
        shop = file.rsplit("_", 1)[0]
        tally.add(["all", f"language {t['language']}", f"shop {shop}"], t["class"], got)
        pages.append({"file": file, "truth": t["class"], "label": got.label, "confidence": got.confidence,
                      "evidence": got.evidence(), "name": fields.get("name"), "category": fields.get("category")})
        if got.label is not None and got.label != t["class"]:
            errors.append(f"{file}: truth {t['class']}; {got.evidence()}")
    order = {"all": 0, "language": 1, "shop": 2}
    groups = sorted(tally.n, key=lambda g: (order[g.partition(" ")[0]], g))
    return {"groups": {g: tally.row(g) for g in groups}, "pages": pages}


def speed(labels_csv: Path, labels_map: Path | None, n: int) -> dict[str, float]:
    """Seconds to label ``n`` products with a fresh labeller (the dev texts, each name and URL made
    unique, with the retailer's product type as the category)."""
    with labels_csv.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f)]
    items = [(r["product_text"].partition(" | "), r["source_type"].partition("=")[2]) for r in rows]
    fresh = TextLabeller(labels_map)
    t0 = time.perf_counter()
    for i in range(n):
        (name, _, desc), cat = items[i % len(items)]
        fresh.label(name=f"{name} {i}", description=desc, category=cat,
                    url=f"https://shop.example/p/{i}/{name.replace(' ', '-')}")
    s = time.perf_counter() - t0
    return {"products": n, "seconds": round(s, 2), "per_second": round(n / s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="folder holding realphotos-dev "
                    "and realpages (default: ../shared beside the repository)")
    ap.add_argument("--labels-map", type=Path, default=None, help="a TOML labels map to use")
    ap.add_argument("--truth", type=Path, default=ROOT / "scripts" / "realpages_classes.csv")
    ap.add_argument("--speed", type=int, default=0, help="also time labelling this many products")
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    ap.add_argument("--errors", action="store_true", help="list the wrong labels (name+description, pages)")
    args = ap.parse_args()

    labeller = TextLabeller(args.labels_map)
    errors: list[str] = []
    out: dict[str, Any] = {"version": labeller.version}
    dev = args.shared / "realphotos-dev" / "labels.csv"
    if dev.is_file():
        out["dev"] = dev_texts(dev, labeller, errors)
        for setup, rows in out["dev"].items():
            print(_table(f"dev photos' texts, {setup} ({dev})", rows))
    pages = args.shared / "realpages"
    if (pages / "manifest.csv").is_file():
        out["realpages"] = real_pages(pages, args.truth, labeller, errors)
        print(_table(f"real pages, extracted ({pages})", out["realpages"]["groups"]))
    if args.speed and dev.is_file():
        out["speed"] = speed(dev, args.labels_map, args.speed)
        print(f"\nspeed: {out['speed']['products']} products in {out['speed']['seconds']} s "
              f"({out['speed']['per_second']}/s)")
    if args.errors:
        print("\nwrong labels:\n  " + "\n  ".join(errors or ["none"]))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(f"\ntext labeller version {labeller.version}")


if __name__ == "__main__":
    main()

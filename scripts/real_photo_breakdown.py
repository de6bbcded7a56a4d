"""Real-photo results of a model, per retailer and per class, as Markdown tables.

Classifies every photo of a labelled set once (``garment evaluate``'s code), then splits
the metrics by a column of the labels CSV (``retailer`` in ``../shared/realphotos-dev``).
Also writes the confusion matrix and the worst-mistakes grid when ``--plots`` is given.

    python scripts/real_photo_breakdown.py ../shared/realphotos-dev/labels.csv [--model DIR] [--plots DIR]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from garment.classify import Classifier, ClassifyConfig
from garment.evaluate import evaluate_labelled, labelled_metrics, plot_confusion, plot_mistakes


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("labels", type=Path)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--by", default="retailer", help="labels.csv column to split by")
    ap.add_argument("--plots", type=Path, default=None, help="write confusion.png and mistakes.png here")
    args = ap.parse_args()

    clf = Classifier.load(config=ClassifyConfig(model_dir=args.model))
    run = evaluate_labelled(clf, args.labels)
    with args.labels.open(newline="") as f:
        group_of = {(args.labels.parent / r["file"]).resolve(): r.get(args.by, "") for r in csv.DictReader(f)}
    groups = np.array([group_of[Path(p).resolve()] for p in run.files])

    rows = [("all", run.metrics)]
    for g in sorted(set(groups)):
        m = groups == g
        rows.append((g, labelled_metrics(run.truth[m], run.probs[m], run.score[m], clf.threshold, clf.classes)))
    print(f"| {args.by} | photos | in-scope accuracy | other AUROC | overall (with other) |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        auc = "-" if r["other_auroc"] is None else f"{r['other_auroc']:.3f}"
        print(f"| {name} | {r['n']} | {_pct(r['in_scope_accuracy'])} | {auc} | {_pct(r['overall_accuracy'])} |")
    print()
    print("| class | " + " | ".join(name for name, _ in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for c in clf.classes:
        print(f"| {c} | " + " | ".join(_pct(r["per_class"][c]) for _, r in rows) + " |")
    print(f"\nthreshold {clf.threshold:.3f}: other recall {_pct(run.metrics['other_recall'])}, "
          f"in-scope kept {_pct(run.metrics['in_scope_kept'])}")
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        acc = run.metrics["in_scope_accuracy"] or 0.0
        plot_confusion(np.array(run.metrics["confusion"]), clf.classes, args.plots / "confusion.png",
                       f"{args.labels.parent.name}: in-scope accuracy {acc:.3f}")
        plot_mistakes(run, clf, args.plots / "mistakes.png")
        print(f"plots: {args.plots / 'confusion.png'}, {args.plots / 'mistakes.png'}")


if __name__ == "__main__":
    main()

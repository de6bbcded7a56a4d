"""Evaluate: a model's accuracy on Fashion-MNIST's test set or on labelled shop photos.

Metrics are pure functions of arrays (tested against brute-force counts); the runners
classify, compute them, and write a JSON file and PNG plots (matplotlib, Agg backend).

On labelled photos, a row is ``file`` (relative to the CSV's folder) and ``label_index``
(0-9, or -1 for a product that is none of the ten). Three questions are answered apart:
is the class right when the product is one of the ten (in-scope accuracy, argmax over the
ten), does the in-scope score separate the ten from the rest (AUROC against the -1 rows),
and are the final labels right once "other" is applied (overall accuracy). Files that cannot
be converted are left out of every metric and listed under ``failed``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from garment import OTHER, OTHER_INDEX
from garment.classify import Classifier, ClassifyConfig, describe_backend
from garment.errors import GarmentError, missing_extra

# --------------------------------------------------------------------------- metrics


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts: row = true class, column = predicted class (labels in 0..k-1)."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(truth, np.int64), np.asarray(pred, np.int64)), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall per class from a confusion matrix; NaN for a class with no rows."""
    rows = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, np.diag(cm) / np.maximum(rows, 1), np.nan)


def auroc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Area under the ROC curve: P(a positive scores above a negative), ties counting half.

    Rank-based (Mann-Whitney U) with tied scores given their average rank. None when either
    side is empty.
    """
    pos, neg = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return None
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), np.float64)
    # Average rank (1-based) over each run of equal scores.
    starts = np.r_[0, np.nonzero(np.diff(sorted_scores))[0] + 1]
    ends = np.r_[starts[1:], len(scores)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def labelled_metrics(
    truth: np.ndarray, probs: np.ndarray, score: np.ndarray, threshold: float, classes: list[str]
) -> dict[str, Any]:
    """Metrics on labelled photos. ``truth`` in -1..C-1, ``probs`` (N, C), ``score`` (N,).

    in-scope accuracy: argmax over the C classes on rows 0..C-1; other_auroc: in-scope score
    of rows 0..C-1 against rows -1; overall accuracy: final label (-1 when score < threshold)
    against the truth on every row.
    """
    truth = np.asarray(truth, np.int64)
    k = len(classes)
    argmax = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
    final = np.where(score >= threshold, argmax, OTHER_INDEX)
    inside = truth >= 0
    cm = confusion_matrix(truth[inside], argmax[inside], k)
    n_in = int(inside.sum())
    return {
        "n": int(len(truth)),
        "n_in_scope": n_in,
        "n_other": int((~inside).sum()),
        "in_scope_accuracy": float(np.trace(cm) / n_in) if n_in else None,
        "other_auroc": auroc(score[inside], score[~inside]),
        "overall_accuracy": float((final == truth).mean()) if len(truth) else None,
        "threshold": float(threshold),
        "other_recall": float((final[~inside] == OTHER_INDEX).mean()) if (~inside).any() else None,
        "in_scope_kept": float((final[inside] != OTHER_INDEX).mean()) if n_in else None,
        "per_class": dict(zip(classes, _nan_to_none(per_class_accuracy(cm)), strict=True)),
        "confusion": cm.tolist(),
    }


# --------------------------------------------------------------------------- runners


@dataclass
class EvaluateConfig:
    """What to evaluate and where the results go."""

    #: A labels CSV (file, label_index columns), or None with ``fashion_mnist=True``.
    labels: Path | None = None
    #: Evaluate on Fashion-MNIST's 10,000 test images instead.
    fashion_mnist: bool = False
    #: Folder holding Fashion-MNIST's IDX files (see ``garment data``).
    data_dir: Path | None = None
    #: Write the metrics (and this config) here as JSON.
    json_path: Path | None = None
    #: Write confusion.png (and, on photos, mistakes.png) into this folder.
    plots_dir: Path | None = None
    #: How many of the worst mistakes the mistakes grid shows.
    n_mistakes: int = 24
    #: Write the photo metrics into the model card's ``metrics["real_photo"]`` (the report
    #: and ``model.json`` then say how the model does on real photos).
    record: bool = False
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)

    def validate(self) -> None:
        if (self.labels is None) == (not self.fashion_mnist):
            raise GarmentError("evaluate needs exactly one of: a LABELS.csv, or --fashion-mnist")
        if self.labels is not None and not Path(self.labels).is_file():
            raise GarmentError(f"{self.labels}: no such labels file")
        if self.record and self.labels is None:
            raise GarmentError("--record needs a labels CSV of photos (Fashion-MNIST metrics are written by training)")
        self.classify.validate()


@dataclass
class LabelledRun:
    """A labelled-photo evaluation: the metrics and the per-row arrays behind them."""

    metrics: dict[str, Any]
    files: list[Path]
    truth: np.ndarray
    probs: np.ndarray
    score: np.ndarray
    failed: list[dict[str, str]]


def read_labels(path: str | Path) -> tuple[list[Path], np.ndarray]:
    """Read a labels CSV: (absolute file paths, label_index array). Raises on a bad row."""
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"file", "label_index"} - set(reader.fieldnames or [])
        if missing:
            raise GarmentError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                               "need file (relative to the CSV) and label_index (0-9 or -1)")
        files, labels = [], []
        for line, row in enumerate(reader, start=2):
            try:
                idx = int(row["label_index"])
            except ValueError:
                idx = -2
            if not -1 <= idx <= 9:
                raise GarmentError(f"{path}:{line}: label_index {row['label_index']!r} is not 0-9 or -1")
            files.append(path.parent / row["file"])
            labels.append(idx)
    if not files:
        raise GarmentError(f"{path}: no rows")
    return files, np.array(labels, dtype=np.int64)


def evaluate_labelled(
    clf: Classifier, labels_csv: str | Path,
    progress: Callable[[int, int | None], None] | None = None,
) -> LabelledRun:
    """Classify every labelled photo and compute the metrics."""
    files, truth = read_labels(labels_csv)
    k = len(clf.classes)
    if k != 10:
        raise GarmentError(f"labels are Fashion-MNIST indices but the model has {k} classes")
    probs = np.zeros((len(files), k), np.float32)
    score = np.zeros(len(files), np.float32)
    ok = np.zeros(len(files), bool)
    failed = []
    for i, p in enumerate(clf.stream(files, total=len(files), progress=progress)):
        if p.status == "ok":
            ok[i] = True
            probs[i], score[i] = p.probs, p.score
        else:
            failed.append({"file": p.path, "error": p.error or ""})
    metrics = labelled_metrics(truth[ok], probs[ok], score[ok], clf.threshold, clf.classes)
    metrics["n_failed"] = len(failed)
    metrics["failed"] = failed
    return LabelledRun(metrics, [f for f, o in zip(files, ok, strict=True) if o], truth[ok],
                       probs[ok], score[ok], failed)


def evaluate_fashion_mnist(clf: Classifier, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion on Fashion-MNIST's 10,000 test images."""
    from garment.data import load_split

    images, labels = load_split("test", data_dir)
    probs, _ = clf.predict_arrays(images)
    pred = probs.argmax(1)
    cm = confusion_matrix(labels, pred, len(clf.classes))
    return {
        "n": int(len(labels)),
        "accuracy": float((pred == labels).mean()),
        "per_class": dict(zip(clf.classes, _nan_to_none(per_class_accuracy(cm)), strict=True)),
        "confusion": cm.tolist(),
    }


def run(config: EvaluateConfig,
        progress: Callable[[int, int | None], None] | None = None) -> dict[str, Any]:
    """Evaluate as configured; write the JSON and plots asked for; return the metrics."""
    config.validate()
    clf = Classifier.load(config=config.classify)
    model = str(config.classify.model_dir or "default")
    if config.fashion_mnist:
        metrics = evaluate_fashion_mnist(clf, config.data_dir)
        title = f"Fashion-MNIST test, accuracy {metrics['accuracy']:.3f}"
        lab = None
    else:
        assert config.labels is not None
        lab = evaluate_labelled(clf, config.labels, progress)
        metrics = lab.metrics
        acc = metrics["in_scope_accuracy"]
        title = f"{Path(config.labels).parent.name}: in-scope accuracy {acc or 0:.3f}"
    metrics["model"] = model
    metrics["backend"] = describe_backend(clf.spec.kind)
    if config.plots_dir:
        plots = Path(config.plots_dir)
        plots.mkdir(parents=True, exist_ok=True)
        plot_confusion(np.array(metrics["confusion"]), clf.classes, plots / "confusion.png", title)
        metrics["plots"] = [str(plots / "confusion.png")]
        if lab is not None:
            plot_mistakes(lab, clf, plots / "mistakes.png", config.n_mistakes)
            metrics["plots"].append(str(plots / "mistakes.png"))
    if config.record and lab is not None:
        metrics["recorded_in"] = str(record_real_photo(config.classify.model_dir, metrics, Path(config.labels or "")))
    if config.json_path:
        out = Path(config.json_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**metrics, "config": asdict(config)}, indent=2, default=str) + "\n")
    return metrics


def record_real_photo(model_dir: Path | None, metrics: dict[str, Any], labels: Path) -> Path:
    """Write the headline photo metrics into the model card; returns the card's path."""
    import datetime as dt

    from garment.models import DEFAULT_MODEL_DIR, read_card, write_card

    folder = Path(model_dir or DEFAULT_MODEL_DIR)
    card = read_card(folder)
    card.metrics["real_photo"] = {
        **{k: metrics[k] for k in ("in_scope_accuracy", "other_auroc", "overall_accuracy", "n", "threshold",
                                   "backend")},
        "dataset": labels.parent.name,
        "measured": dt.date.today().isoformat(),
    }
    return write_card(folder, card)


# --------------------------------------------------------------------------- plots


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, or the one-line error naming its extra."""
    try:
        import matplotlib
    except ImportError as exc:
        raise missing_extra("train", "matplotlib", "evaluation plots") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with counts, as a PNG."""
    plt = _pyplot()

    k = len(classes)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted (argmax over the ten)")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def worst_mistakes(lab: LabelledRun, threshold: float, n: int) -> list[int]:
    """Rows whose final label is wrong, most confident first (confidence = top probability)."""
    argmax = lab.probs.argmax(1)
    final = np.where(lab.score >= threshold, argmax, OTHER_INDEX)
    wrong = np.nonzero(final != lab.truth)[0]
    conf = lab.probs.max(1)[wrong]
    return [int(i) for i in wrong[np.argsort(-conf, kind="stable")][:n]]


def plot_mistakes(lab: LabelledRun, clf: Classifier, path: Path, n: int = 24) -> Path:
    """A grid of the worst mistakes: original photo, converted 28x28, truth and prediction."""
    plt = _pyplot()
    from PIL import Image

    from garment.convert import convert

    rows = worst_mistakes(lab, clf.threshold, n)
    cols = 4  # mistakes per grid row; each takes two panels
    grid_rows = max(1, -(-len(rows) // cols))
    fig, axes = plt.subplots(grid_rows, 2 * cols, figsize=(2 * cols * 1.3, grid_rows * 1.9),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")

    def name(i: int) -> str:
        return OTHER if i == OTHER_INDEX else clf.classes[i]

    for slot, i in enumerate(rows):
        a, b = axes[slot // cols, 2 * (slot % cols)], axes[slot // cols, 2 * (slot % cols) + 1]
        with Image.open(lab.files[i]) as im:
            im.thumbnail((160, 160))
            a.imshow(im.convert("RGB"))
        b.imshow(convert(lab.files[i], clf.spec.recipe), cmap="gray", vmin=0, vmax=255)
        best = int(lab.probs[i].argmax())
        pred = f"{name(best)}" if lab.score[i] >= clf.threshold else f"{OTHER} ({name(best)})"
        a.set_title(f"true {name(int(lab.truth[i]))}", fontsize=7)
        b.set_title(f"pred {pred} {lab.probs[i, best]:.2f}", fontsize=7, color="red")
    fig.suptitle(f"worst mistakes (threshold {clf.threshold:.3g})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

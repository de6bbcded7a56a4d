"""Classify's rows: image files in (folders walked lazily), ``Prediction`` rows and their counts
out, written as CSV or JSON lines as they come."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from garment.errors import GarmentError

#: Suffixes picked up when walking a folder (a file named explicitly is always tried).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
#: Output columns, in order.
COLUMNS = ("path", "label", "label_index", "confidence", "top3", "status", "error")
FORMATS = ("csv", "jsonl")


@dataclass
class Prediction:
    """One image's result. ``score`` is the in-scope score the threshold applies to."""

    path: str
    label: str | None
    label_index: int | None
    confidence: float | None
    top3: str | None
    status: str  # "ok" | "error"
    error: str | None = None
    score: float | None = None
    #: All class probabilities (C,), for evaluation; not an output column.
    probs: np.ndarray | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        """The output columns (COLUMNS) as a dict."""
        return {k: getattr(self, k) for k in COLUMNS}


@dataclass
class Summary:
    """Counts over a run: per label, per error reason."""

    n: int = 0
    ok: int = 0
    failed: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, p: Prediction) -> None:
        self.n += 1
        if p.status == "ok":
            self.ok += 1
            self.labels[p.label or ""] += 1
        else:
            self.failed += 1
            self.reasons[(p.error or "error").split(":", 1)[0]] += 1


# --------------------------------------------------------------------------- inputs


def iter_images(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Image files under ``paths``: files as given, folders walked recursively in name order.

    Lazy, so a folder of millions of files is never listed in memory at once.
    """
    return map(Path, _image_files(paths))


def _image_files(paths: Iterable[str | Path]) -> Iterator[str]:
    # Plain strings: building a Path per file costs more than listing it.
    for p in map(str, paths):
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES and name[0] != ".":
                        yield os.path.join(root, name)
        elif os.path.exists(p):
            yield p
        else:
            raise GarmentError(f"{p}: no such file or folder")


# --------------------------------------------------------------------------- outputs


def write_predictions(predictions: Iterable[Prediction], out: TextIO, fmt: str = "csv") -> Summary:
    """Write rows as they come (CSV with a header, or JSON lines); return the run's counts."""
    if fmt not in FORMATS:
        raise GarmentError(f"format {fmt!r} unknown; use one of {', '.join(FORMATS)}")
    summary = Summary()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for p in predictions:
        summary.add(p)
        if writer:
            writer.writerow({k: "" if v is None else v for k, v in p.row().items()})
        else:
            out.write(json.dumps(p.row()) + "\n")
    return summary

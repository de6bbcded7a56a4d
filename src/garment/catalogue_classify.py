"""Classify a catalogue: every stored packshot through a model, into the predictions table.

Predictions are keyed by (image, model id). The model id names the model folder and the
first hex digits of a SHA-256 of its weights and its card's recipe and "other" rule
(``default-3f2a9c1b7e``; ``@THRESHOLD`` added when the threshold is overridden), so two
models, or a retrained one, keep their answers side by side. Images that already have an
answer from the same model are skipped unless ``force`` is set, so re-running after a
resumed crawl classifies only what is new. Next to the predictions,
``DIR/models/<model id>.json`` records the model's card and the classify config, for the
report.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from garment.classify import (
    DEFAULT_MODEL_DIR,
    META_FILE,
    WEIGHTS_FILE,
    Classifier,
    ClassifyConfig,
    ModelInfo,
)
from garment.classify import Prediction as ImagePrediction
from garment.errors import GarmentError, ModelFileError
from garment.store import Catalogue, Prediction

MODELS_DIR = "models"  # inside the catalogue folder: one card snapshot per model id
FLUSH_EVERY = 256  # predictions written per transaction: a kill loses at most these


def model_id(model_dir: str | Path | None = None) -> str:
    """``<folder name>-<10 hex digits>``: a SHA-256 of the weights and of what in the card
    changes answers (architecture, recipe, "other" rule), not of its metrics or dates."""
    info = ModelInfo.read(model_dir)
    h = hashlib.sha256()
    with (info.folder / WEIGHTS_FILE).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(json.dumps([info.arch, info.arch_args, info.classes, info.recipe, info.other],
                        sort_keys=True, default=str).encode())
    return f"{info.folder.resolve().name}-{h.hexdigest()[:10]}"


@dataclass
class CatalogueClassified:
    """What ``classify_catalogue`` did."""

    model_id: str
    images: int = 0  # stored packshots (status ok)
    classified: int = 0  # classified in this call
    reused: int = 0  # already had an answer from this model
    failed: int = 0  # packshots that could not be converted (rows with status "error")
    labels: Counter[str] = field(default_factory=Counter)  # over this call's answers
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = dict(self.labels)
        return d


def _to_row(image_id: int, p: ImagePrediction, classes: list[str]) -> Prediction:
    if p.status != "ok" or p.probs is None:
        return Prediction(image_id, None, None, None, None, status="error", error=p.error)
    order = p.probs.argsort()[::-1][:3]
    top3 = [(classes[int(j)], round(float(p.probs[j]), 4)) for j in order]
    return Prediction(image_id, p.label, p.label_index, p.confidence, top3)


def _done(cat: Catalogue, mid: str) -> set[int]:
    rows = cat.conn.execute("SELECT image_id FROM predictions WHERE model_id=? AND status='ok'",
                            (mid,))
    return {int(r[0]) for r in rows}


def classify_catalogue(
    catalogue_dir: str | Path,
    model_dir: str | Path | None = None,
    config: ClassifyConfig | None = None,
    force: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
) -> CatalogueClassified:
    """Classify the stored packshots of the catalogue in ``catalogue_dir``.

    ``model_dir`` (or ``config.model_dir``; None: the shipped model) chooses the model.
    A packshot that cannot be converted is stored as an "error" prediction and counted;
    GarmentError is raised only for run-level problems (no catalogue, unusable model).
    """
    import time

    started = time.monotonic()
    config = config or ClassifyConfig()
    if model_dir is not None:
        config = ClassifyConfig(**{**asdict(config), "model_dir": Path(model_dir)})
    mid = model_id(config.model_dir)
    if config.threshold is not None:  # other answers: kept apart from the card's threshold's
        mid = f"{mid}@{config.threshold:g}"
    with Catalogue.open(catalogue_dir, create=False) as cat:
        images = list(cat.iter_images())
        done = set() if force else _done(cat, mid)
        todo = [img for img in images if img.image_id not in done]
        result = CatalogueClassified(mid, images=len(images), reused=len(images) - len(todo))
        if todo:
            clf = Classifier.load(config=config)
            buffer: list[Prediction] = []
            stream = clf.stream([img.path for img in todo], total=len(todo), progress=progress)
            # stream yields in input order, so the n-th answer is the n-th image.
            for img, p in zip(todo, stream, strict=True):
                row = _to_row(img.image_id, p, clf.classes)
                buffer.append(row)
                result.classified += 1
                if row.status == "ok":
                    result.labels[row.label or ""] += 1
                else:
                    result.failed += 1
                if len(buffer) >= FLUSH_EVERY:
                    cat.record_predictions(mid, buffer)
                    buffer = []
            cat.record_predictions(mid, buffer)
            _write_snapshot(Path(catalogue_dir), mid, config, clf.threshold)
    result.elapsed_s = round(time.monotonic() - started, 2)
    return result


def _write_snapshot(folder: Path, mid: str, config: ClassifyConfig, threshold: float) -> None:
    model_dir = Path(config.model_dir) if config.model_dir else DEFAULT_MODEL_DIR
    card = json.loads((model_dir / META_FILE).read_text())
    snapshot = {
        "model_id": mid,
        "model_dir": str(model_dir.resolve()),
        "classified": datetime.now(UTC).isoformat(timespec="seconds"),
        "threshold": threshold,
        "config": json.loads(json.dumps(asdict(config), default=str)),
        "card": card,
    }
    target = folder / MODELS_DIR / f"{mid}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(snapshot, indent=2) + "\n", encoding="utf-8")


def model_snapshot(catalogue_dir: str | Path, mid: str) -> dict[str, Any]:
    """The card and classify settings of model ``mid`` as ``classify_catalogue`` recorded
    them; the card is re-read from the model folder when its weights are unchanged (its
    metrics may have been updated since)."""
    path = Path(catalogue_dir) / MODELS_DIR / f"{mid}.json"
    snapshot: dict[str, Any] = {"model_id": mid, "card": {}}
    if path.is_file():
        try:
            snapshot = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise GarmentError(f"{path}: not valid JSON ({exc}); delete it and classify again") from exc
    folder = Path(snapshot.get("model_dir") or DEFAULT_MODEL_DIR)
    try:
        if model_id(folder) == mid.split("@")[0]:
            snapshot["card"] = json.loads((folder / META_FILE).read_text())
            snapshot.setdefault("model_dir", str(folder))
    except (ModelFileError, OSError, ValueError):
        pass  # the folder moved or changed: the recorded card is what there is
    return snapshot

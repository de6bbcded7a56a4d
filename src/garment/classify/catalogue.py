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
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

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
from garment.labels import TextLabel, TextLabeller
from garment.labels.fuse import Fusion, fuse
from garment.store import Catalogue, ImageRow, Prediction

MODELS_DIR = "models"  # inside the catalogue folder: one card snapshot per model id
MODEL_SETTING = "model_dir"  # catalogue setting: its own model folder, relative to the catalogue
FLUSH_EVERY = 256  # predictions written per transaction: a kill loses at most these
CLAIM_BATCH = 256  # images claimed at a time (other classify processes of the catalogue take others)


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
    labels: Counter[str] = field(default_factory=Counter)  # over this call's image answers
    elapsed_s: float = 0.0
    model_dir: str = ""  # the model folder used (the catalogue's own after `garment adapt`)
    # Fusion with the products' text (empty when classified without text):
    products: int = 0
    text_labelled: int = 0  # products whose text named a class or "other"
    sources: Counter[str] = field(default_factory=Counter)  # final labels by source: image, text, agree
    conflicts: int = 0  # image and text named different labels
    final_labels: Counter[str] = field(default_factory=Counter)  # the final labels, every product

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("labels", "sources", "final_labels"):
            d[key] = dict(getattr(self, key))
        return d


def catalogue_model(cat: Catalogue) -> Path | None:
    """The catalogue's own model folder (set by ``garment adapt``), or None for the shipped one."""
    value = cat.get_setting(MODEL_SETTING)
    if not value:
        return None
    folder = cat.folder / value
    if not (folder / WEIGHTS_FILE).is_file():
        raise GarmentError(f"the catalogue's model {folder} is missing; run `garment adapt --catalogue "
                           f"{cat.name}` again, or pass --model")
    return folder


def set_catalogue_model(cat: Catalogue, folder: Path | None) -> None:
    """Make ``folder`` (inside the catalogue folder) the catalogue's model; None: the shipped one."""
    cat.set_setting(MODEL_SETTING, None if folder is None else folder.resolve().relative_to(
        cat.folder.resolve()).as_posix())


def _to_row(image_id: int, p: ImagePrediction, classes: list[str]) -> Prediction:
    if p.status != "ok" or p.probs is None:
        return Prediction(image_id, None, None, None, None, status="error", error=p.error)
    order = p.probs.argsort()[::-1][:3]
    top3 = [(classes[int(j)], round(float(p.probs[j]), 4)) for j in order]
    return Prediction(image_id, p.label, p.label_index, p.confidence, top3,
                      probs=[float(q) for q in p.probs], score=p.score)


def _claimed(cat: Catalogue, mid: str, owner: str, taken: deque[ImageRow]) -> Iterator[Path]:
    """The paths of the images this process claims, a batch at a time as the classifier asks
    for them (other processes classifying the same catalogue claim others); each claimed
    image is queued in ``taken`` in order."""
    while batch := cat.claim_images(mid, owner, CLAIM_BATCH):
        taken.extend(batch)
        yield from (img.path for img in batch)


def _classify(cat: Catalogue, clf: Classifier, mid: str, images: list[ImageRow] | None, total: int,
              result: CatalogueClassified, progress: Callable[[int, int | None], None] | None) -> None:
    """Classify ``images`` (all given: ``force``), else the images not yet answered by
    ``mid`` that this process claims, storing the answers ``FLUSH_EVERY`` at a time."""
    owner = uuid.uuid4().hex
    taken: deque[ImageRow] = deque()
    paths: Iterable[Path] = _claimed(cat, mid, owner, taken) if images is None else [i.path for i in images]
    if images is not None:
        taken.extend(images)
    buffer: list[Prediction] = []
    try:
        # stream yields in input order, so the n-th answer is the n-th image taken.
        for p in clf.stream(paths, total=total, progress=progress):
            row = _to_row(taken.popleft().image_id, p, clf.classes)
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
    finally:
        cat.release_claims(mid, owner)


def classify_catalogue(
    catalogue_dir: str | Path,
    model_dir: str | Path | None = None,
    config: ClassifyConfig | None = None,
    force: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    text: bool = True,
    labels_map: str | Path | None = None,
) -> CatalogueClassified:
    """Classify the stored packshots of the catalogue in ``catalogue_dir``, then fuse each
    product's image answer with its text label into its final label.

    ``model_dir`` (or ``config.model_dir``) chooses the model; None: the catalogue's own
    (``garment adapt``), else the shipped one. ``text=False`` keeps the image answers alone;
    ``labels_map`` is a TOML file of the shop's own words (see ``garment.labels.text``).
    A packshot that cannot be converted is stored as an "error" prediction and counted;
    GarmentError is raised only for run-level problems (no catalogue, unusable model).
    """
    import time

    started = time.monotonic()
    config = config or ClassifyConfig()
    if model_dir is not None:
        config = ClassifyConfig(**{**asdict(config), "model_dir": Path(model_dir)})
    with Catalogue.open(catalogue_dir, create=False) as cat:
        if config.model_dir is None:  # the catalogue's adapted model, when it has one
            config = ClassifyConfig(**{**asdict(config), "model_dir": catalogue_model(cat)})
        mid = model_id(config.model_dir)
        if config.threshold is not None:  # other answers: kept apart from the card's threshold's
            mid = f"{mid}@{config.threshold:g}"
        images = list(cat.iter_images())
        done = set() if force else cat.predicted(mid)
        result = CatalogueClassified(mid, images=len(images), reused=len({i.image_id for i in images} & done))
        if result.reused < len(images):
            clf = Classifier.load(config=config)
            _classify(cat, clf, mid, images if force else None, len(images) - result.reused, result, progress)
            _write_snapshot(cat.folder, mid, config, clf.threshold)
        result.model_dir = str(config.model_dir or DEFAULT_MODEL_DIR)
        if text:
            card = json.loads(((config.model_dir or DEFAULT_MODEL_DIR) / META_FILE).read_text())
            fuse_catalogue(cat, mid, Fusion.from_card(card, config.threshold), TextLabeller(labels_map), result)
    result.elapsed_s = round(time.monotonic() - started, 2)
    return result


def label_texts(cat: Catalogue, labeller: TextLabeller) -> dict[int, TextLabel]:
    """Every product's text label, stored in the catalogue (replacing older ones)."""
    labels = {int(p["id"]): labeller.label_product(p) for p in cat.products()}
    cat.record_text_labels(labeller.version, ((pid, t.as_dict()) for pid, t in labels.items()))
    return labels


def fuse_catalogue(cat: Catalogue, mid: str, fusion: Fusion, labeller: TextLabeller,
                   result: CatalogueClassified | None = None) -> CatalogueClassified:
    """Text-label every product and fuse each text label with model ``mid``'s image answer
    into the final labels (``labels`` table); counts go into ``result``."""
    result = result or CatalogueClassified(mid)
    texts = label_texts(cat, labeller)
    # The usable image answers: a packshot classified, with every probability and its score.
    answers = {pid: (np.asarray(probs), score) for pid, (probs, score) in cat.image_answers(mid).items()}
    rows = []
    for pid, t in texts.items():
        probs, score = answers.get(pid, (None, None))
        f = fuse(probs, score, t.label_index, t.confidence, fusion)
        if f.label is None:
            continue  # neither a usable packshot nor text evidence: nothing to say
        rows.append({"product_id": pid, **f.as_dict()})
        result.sources[f.label_source] += 1
        result.conflicts += int(f.conflict)
        result.final_labels[f.label] += 1
    result.products = len(texts)
    result.text_labelled = sum(t.label is not None for t in texts.values())
    cat.replace_labels(mid, rows)
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
    them in the catalogue's files folder ``catalogue_dir`` (``Catalogue.folder``); the card is
    re-read from the model folder when its weights are unchanged (its metrics may have been
    updated since)."""
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

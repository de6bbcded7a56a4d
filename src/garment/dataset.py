"""Dataset: a labelled catalogue as a training set (Fashion-MNIST IDX files, image folders or
Parquet), with its card (``README.md``), ``sources.csv`` and ``dataset.json``.

Which products go in: those whose final label (``Catalogue.products_with_labels``: a human
label where there is one, else image and text fused) is one of the ten classes and whose
packshot is stored; "other" and unlabelled products stay out. Products that share a
packshot (same SHA-256) become one example, so no photo is in both splits; copies that
disagree on the label are left out. The split is stratified: ``test_fraction`` of each
class (rounded), drawn with ``seed``. Every format is written from the same selection and
split, so ``sources.csv`` lines up with any of them.

- ``fmnist``: ``train-images-idx3-ubyte.gz`` ... in Fashion-MNIST's exact format: each
  packshot converted with the model's recipe, first framing ("crop", Fashion-MNIST's), 28x28
  uint8, labels 0-9. ``dataset.json`` carries the MD5 of each file's IDX bytes, which
  ``garment.data`` checks in place of the official ones (``garment train --data-dir D``).
- ``imagefolder``: ``D/<split>/<class folder>/<sha256>.<ext>``, the original files.
- ``parquet``: ``D/train.parquet`` and ``D/test.parquet``, one row per example: the original
  image as Hugging Face's Image struct (``{"bytes", "path"}``), ``label`` (int, names in the
  schema's Hugging Face metadata), ``label_name`` and the provenance columns.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from garment import CLASSES, __version__
from garment.cache import sha256_file
from garment.data import MANIFEST, OFFICIAL_DIRS, SPLITS, read_bytes, write_idx
from garment.errors import GarmentError
from garment.store import Catalogue

FORMATS = ("fmnist", "imagefolder", "parquet")
#: Values of ``only``: keep the products whose final label came from this source.
ONLY = ("human", "agree", "text", "image")
CARD_NAME = "README.md"
SOURCES_NAME = "sources.csv"
#: Class folder names for ``imagefolder``: the label index first, so that loaders which number
#: the folders in sorted order (torchvision's ImageFolder, Hugging Face's imagefolder) give
#: Fashion-MNIST's label numbers; "T-shirt/top" cannot be a folder name.
FOLDERS = tuple(f"{i}_{c.replace('/', '_').replace(' ', '_')}" for i, c in enumerate(CLASSES))
SOURCE_COLUMNS = ("split", "index", "file", "sha256", "label", "label_name", "label_source", "confidence",
                  "product_id", "product_url", "image_url", "name", "category", "duplicates")


@dataclass
class Example:
    """One image of the dataset and where it came from."""

    sha256: str
    path: Path  # the stored packshot
    label: int  # 0-9
    label_source: str  # human, agree, text or image
    confidence: float | None
    product_id: int
    product_url: str | None
    image_url: str | None
    name: str | None
    category: str | None
    duplicates: int = 1  # products that share this packshot
    split: str = ""
    file: str = ""  # imagefolder: path inside the dataset folder

    @property
    def label_name(self) -> str:
        return CLASSES[self.label]


@dataclass
class DatasetSummary:
    """What ``write_dataset`` wrote: counts per split and class, sources, exclusions."""

    out: Path
    format: str
    model_id: str | None
    counts: dict[str, dict[str, int]]  # split -> class -> images
    sources: dict[str, int]  # label source -> images
    excluded: dict[str, int]  # reason -> products left out
    failures: list[dict[str, Any]] = field(default_factory=list)  # per-item errors (conversion)
    files: list[Path] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())


def _check_args(fmt: str, test_fraction: float, min_confidence: float | None, only: str | None) -> None:
    if fmt not in FORMATS:
        raise GarmentError(f"dataset format {fmt!r} unknown; use one of {', '.join(FORMATS)}")
    if not 0.0 <= test_fraction < 1.0:
        raise GarmentError(f"test fraction {test_fraction}: give a fraction in [0, 1), e.g. 0.1428 (1/7)")
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise GarmentError(f"min confidence {min_confidence}: give a value in [0, 1]")
    if only is not None and only not in ONLY:
        raise GarmentError(f"--only {only!r} unknown; use one of {', '.join(ONLY)}")


def select(cat: Catalogue, rows: list[dict[str, Any]], min_confidence: float | None = None,
           only: str | None = None) -> tuple[list[Example], Counter[str]]:
    """The examples of ``products_with_labels`` rows (one per distinct packshot) and how many
    products each reason left out."""
    excluded: Counter[str] = Counter()
    candidates: list[Example] = []
    for r in rows:
        index, source = r.get("label_index"), r.get("label_source") or ""
        path = cat.folder / (r.get("image_path") or "")
        if r.get("label") is None:
            excluded["unlabelled"] += 1
        elif index is None or not 0 <= int(index) < len(CLASSES):
            excluded["other"] += 1
        elif r.get("image_status") != "ok" or not r.get("image_path") or not path.is_file():
            excluded["no packshot"] += 1
        elif only is not None and source != only:
            excluded[f"not {only}"] += 1
        # A person's label is taken as given; the confidence filter is for the machine's.
        elif (min_confidence is not None and source != "human"
              and float(r.get("confidence") or 0.0) < min_confidence):
            excluded["below min confidence"] += 1
        else:
            candidates.append(Example(
                r.get("sha256") or sha256_file(path), path, int(index), source, r.get("confidence"),
                int(r["product_id"]), r.get("product_url"), r.get("image_url"), r.get("name"),
                r.get("category")))
    groups: dict[str, list[Example]] = {}
    for ex in candidates:
        groups.setdefault(ex.sha256, []).append(ex)
    examples = []
    for group in groups.values():
        humans = [ex for ex in group if ex.label_source == "human"]
        deciding = humans or group  # a person's label wins over the machine's on a copy too
        if len({ex.label for ex in deciding}) > 1:
            excluded["same image, different labels"] += len(group)
            continue
        best = min(deciding, key=lambda ex: (-(ex.confidence or 0.0), ex.product_id))
        if len(group) > 1:
            excluded["duplicate image"] += len(group) - 1
        examples.append(replace(best, duplicates=len(group)))
    return examples, excluded


def split(examples: list[Example], test_fraction: float, seed: int = 0) -> list[Example]:
    """Stratified split: in each class, ``round(n * test_fraction)`` examples drawn with
    ``seed`` go to "test", the rest to "train". Returns the examples with ``split`` set,
    each split in SHA-256 order (stable, and mixed across classes)."""
    rng = np.random.default_rng(seed)
    out: list[Example] = []
    for label in range(len(CLASSES)):
        group = sorted((ex for ex in examples if ex.label == label), key=lambda ex: ex.sha256)
        n_test = int(len(group) * test_fraction + 0.5)
        test = set(rng.permutation(len(group))[:n_test].tolist())
        out += [replace(ex, split="test" if i in test else "train") for i, ex in enumerate(group)]
    return sorted(out, key=lambda ex: (ex.split != "train", ex.sha256))


def _convert(examples: list[Example], recipe: dict[str, Any] | None,
             failures: list[dict[str, Any]]) -> tuple[list[Example], np.ndarray]:
    """The 28x28 image of each example (the recipe's first framing); failures recorded."""
    from garment.convert import convert_views

    kept, images = [], []
    for ex in examples:
        try:
            images.append(convert_views(ex.path, recipe)[0])
            kept.append(ex)
        except (GarmentError, OSError, ValueError) as exc:  # per item: recorded, the rest go on
            failures.append({"product_id": ex.product_id, "sha256": ex.sha256, "error": str(exc)})
    return kept, np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)


def _write_fmnist(out: Path, examples: list[Example], recipe: dict[str, Any] | None,
                  failures: list[dict[str, Any]]) -> tuple[list[Example], dict[str, str]]:
    kept: list[Example] = []
    md5: dict[str, str] = {}
    for name, (images_file, labels_file) in SPLITS.items():
        part, images = _convert([ex for ex in examples if ex.split == name], recipe, failures)
        labels = np.array([ex.label for ex in part], np.uint8)
        for file, array in ((images_file, images), (labels_file, labels)):
            path = write_idx(out / f"{file}.gz", array)
            md5[file] = hashlib.md5(read_bytes(path)).hexdigest()
        kept += part
    return kept, md5


def _write_imagefolder(out: Path, examples: list[Example]) -> list[Example]:
    kept = []
    for ex in examples:
        rel = Path(ex.split) / FOLDERS[ex.label] / f"{ex.sha256}{ex.path.suffix.lower() or '.jpg'}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ex.path, out / rel)
        kept.append(replace(ex, file=rel.as_posix()))
    return kept


def hf_features() -> dict[str, Any]:
    """The Parquet schema's Hugging Face metadata: ``image`` an Image, ``label`` a ClassLabel
    with the ten names, so ``load_dataset("parquet", ...)`` decodes both."""
    value = {"dtype": "string", "_type": "Value"}
    return {"image": {"_type": "Image"},
            "label": {"names": list(CLASSES), "_type": "ClassLabel"},
            "label_name": value, "label_source": value,
            "confidence": {"dtype": "float64", "_type": "Value"},
            "sha256": value, "product_id": {"dtype": "int64", "_type": "Value"},
            "product_url": value, "image_url": value, "name": value, "category": value}


def _write_parquet(out: Path, examples: list[Example]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise GarmentError("--format parquet needs pyarrow: pip install 'garment[parquet]', "
                           "or use --format fmnist or imagefolder") from None
    string = pa.string()
    schema = pa.schema([
        ("image", pa.struct([("bytes", pa.binary()), ("path", string)])), ("label", pa.int64()),
        ("label_name", string), ("label_source", string), ("confidence", pa.float64()),
        ("sha256", string), ("product_id", pa.int64()), ("product_url", string),
        ("image_url", string), ("name", string), ("category", string),
    ], metadata={"huggingface": json.dumps({"info": {"features": hf_features()}})})
    for name in SPLITS:
        rows = [{"image": {"bytes": ex.path.read_bytes(), "path": f"{ex.sha256}{ex.path.suffix.lower()}"},
                 "label": ex.label, "label_name": ex.label_name, "label_source": ex.label_source,
                 "confidence": ex.confidence, "sha256": ex.sha256, "product_id": ex.product_id,
                 "product_url": ex.product_url, "image_url": ex.image_url, "name": ex.name,
                 "category": ex.category} for ex in examples if ex.split == name]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), out / f"{name}.parquet")


def _write_sources(out: Path, examples: list[Example]) -> None:
    import csv

    from garment.export import csv_cell

    position: Counter[str] = Counter()
    with (out / SOURCES_NAME).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(SOURCE_COLUMNS)
        for ex in examples:
            row = {**asdict(ex), "index": position[ex.split], "label_name": ex.label_name}
            position[ex.split] += 1
            writer.writerow([csv_cell(row[c]) for c in SOURCE_COLUMNS])


def _prepare_out(out: Path) -> Path:
    """A fresh folder beside ``out`` to write into (moved into place at the end); ``out``
    must be missing, empty, or a dataset this command wrote before (it is replaced)."""
    out = out.expanduser()
    if any(out.resolve() == d.resolve() for d in OFFICIAL_DIRS):
        raise GarmentError(f"--out {out} is where Fashion-MNIST itself is kept; choose another folder")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise GarmentError(f"--out {out} exists and is not empty (nor a dataset garment wrote); "
                           "give a new or empty folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
        tmp.chmod(0o755)  # mkdtemp's 0700 is for a temporary folder; this one becomes the dataset
        return tmp
    except OSError as exc:
        raise GarmentError(f"cannot write --out {out} ({exc.strerror or exc}); give a writable folder") from exc


def _move_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}-old-{datetime.now(UTC):%Y%m%d%H%M%S%f}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)


def write_dataset(catalogue_dir: str | Path, out: str | Path, fmt: str = "fmnist",
                  test_fraction: float = 1 / 7, min_confidence: float | None = None,
                  only: str | None = None, seed: int = 0, model: str | None = None,
                  progress: Callable[[str], None] | None = None) -> DatasetSummary:
    """Write the labelled dataset of the catalogue in ``catalogue_dir`` to ``out`` in format
    ``fmt`` (fmnist, imagefolder or parquet), with ``README.md`` (the card), ``sources.csv``
    and ``dataset.json``. ``model``: whose labels (a model folder or stored id; default: the
    latest classified). ``min_confidence`` drops machine labels below it; ``only`` keeps the
    labels of one source (human, agree, text, image)."""
    from garment.catalogue_classify import model_snapshot
    from garment.dataset_card import card_facts, write_card
    from garment.report import resolve_model

    _check_args(fmt, test_fraction, min_confidence, only)
    out = Path(out)
    with Catalogue.open(catalogue_dir, create=False, readonly=True) as cat:
        mid = resolve_model(cat, model)
        rows = cat.products_with_labels(mid)
        examples, excluded = select(cat, rows, min_confidence, only)
        facts = card_facts(cat, rows, mid, {ex.product_id for ex in examples})
        files, name = cat.folder, cat.name
    if not examples:
        reasons = ", ".join(f"{k} {n}" for k, n in excluded.most_common()) or "no products"
        raise GarmentError(f"no product of {name} qualifies for the dataset ({reasons}); "
                           "classify it (`garment classify --catalogue`) or relax --min-confidence/--only")
    examples = split(examples, test_fraction, seed)
    snapshot = model_snapshot(files, mid) if mid else {}
    recipe = (snapshot.get("card") or {}).get("recipe") or None
    tmp = _prepare_out(out)
    failures: list[dict[str, Any]] = []
    md5: dict[str, str] = {}
    try:
        if progress:
            progress(f"writing {len(examples)} images as {fmt}")
        if fmt == "fmnist":
            examples, md5 = _write_fmnist(tmp, examples, recipe, failures)
            if failures:
                excluded["conversion failed"] += len(failures)
        elif fmt == "imagefolder":
            examples = _write_imagefolder(tmp, examples)
        else:
            _write_parquet(tmp, examples)
        counts = {s: {c: sum(ex.split == s and ex.label == i for ex in examples) for i, c in enumerate(CLASSES)}
                  for s in SPLITS}
        summary = DatasetSummary(out, fmt, mid, counts, dict(Counter(ex.label_source for ex in examples)),
                                 dict(excluded), failures)
        _write_sources(tmp, examples)
        manifest = {"format": "garment-dataset", "version": 1, "dataset_format": fmt, "garment": __version__,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"), "classes": list(CLASSES),
                    "counts": counts, "label_sources": summary.sources, "excluded": summary.excluded,
                    "filters": {"min_confidence": min_confidence, "only": only, "test_fraction": test_fraction,
                                "seed": seed},
                    **({"md5": md5} if md5 else {}), **facts, "failures": failures}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        write_card(tmp / CARD_NAME, manifest)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary.files = sorted(p for p in out.rglob("*") if p.is_file() and p.parent == out)
    return summary

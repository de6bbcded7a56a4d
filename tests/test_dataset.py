"""garment dataset: each format written from a small catalogue built here, read back, trained on."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from garment import CLASSES, OTHER
from garment.convert import convert_views
from garment.data import load_split, locate
from garment.dataset import FOLDERS, write_dataset
from garment.errors import ChecksumError, GarmentError
from garment.store import Catalogue, Prediction

# Per class: products with their own photo (label index -> count).
PER_CLASS = {0: 8, 1: 7, 4: 6, 8: 4}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def catalogue(tmp_path: Path, make_photo: Callable[..., Path]) -> Path:
    """25 labelled products with distinct packshots, plus: one "other", one unclassified, one
    failed download, a copy of product 0's photo (same label) and a pair of products sharing a
    photo with different labels. Predictions of model "m1" written by hand."""
    folder = tmp_path / "cat"
    with Catalogue.open(folder) as cat:
        run = cat.start_run({"start_urls": ["http://shop.test/"]})
        preds = []

        def add(n: int, photo: Path | None, label: str | None, conf: float = 0.9,
                category: str = "Women > Clothes") -> int:
            product = {"url": f"http://shop.test/p/{n}", "sku": f"S{n}", "name": f"=HYPERLINK(\"x\") {n}",
                       "category": category, "image_urls": [], "extractor": "jsonld"}
            image = None if photo is None else {
                "url": f"http://cdn.test/{n}.jpg", "status": "ok", "path": str(photo.relative_to(folder)),
                "width": 60, "height": 80, "sha256": _sha(photo)}
            pid, iid = cat.save_product(product, image, run)
            if iid is not None and label is not None:
                index = -1 if label == OTHER else CLASSES.index(label)
                preds.append(Prediction(iid, label, index, conf, [(label, conf)]))
            return pid

        n = 0
        for index, count in PER_CLASS.items():
            for k in range(count):
                photo = make_photo(folder / "images" / f"{n}.jpg", index, size=(60 + 3 * k, 80 + 2 * index))
                add(n, photo, CLASSES[index], conf=0.5 + 0.05 * k,
                    category="Men > T-shirts" if index == 0 else "Women > Clothes")
                n += 1
        add(100, make_photo(folder / "images" / "other.jpg", 1, size=(99, 99)), OTHER)
        add(101, make_photo(folder / "images" / "unclassified.jpg", 2, size=(98, 98)), None)
        cat.save_product({"url": "http://shop.test/p/102", "name": "broken", "image_urls": [],
                          "extractor": "jsonld"}, {"url": "http://cdn.test/102.jpg", "status": "too_small"}, run)
        copy = shutil.copy(folder / "images" / "0.jpg", folder / "images" / "copy.jpg")
        add(103, Path(copy), CLASSES[0], conf=0.99)
        shared = make_photo(folder / "images" / "shared.jpg", 3, size=(97, 97))
        add(104, shared, "Dress")
        add(105, shared, "Shirt")
        cat.finish_run(run, {"pages": 30})
        cat.record_predictions("m1", preds)
    return folder


def _sources(out: Path) -> list[dict[str, str]]:
    with (out / "sources.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_fmnist_reads_back_with_garments_loader_and_split_is_stratified(catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    summary = write_dataset(catalogue, out, "fmnist")
    # 25 distinct labelled photos; the copy of product 0 counts once, the disputed pair not at all.
    assert summary.total == 25 and summary.model_id == "m1"
    assert summary.excluded == {"other": 1, "unlabelled": 2, "duplicate image": 1,
                                "same image, different labels": 2}
    x_tr, y_tr = load_split("train", out)  # verified against the dataset's own dataset.json
    x_te, y_te = load_split("test", out)
    assert x_tr.shape[1:] == (28, 28) and x_tr.dtype == np.uint8 and len(x_tr) + len(x_te) == 25
    # Stratified: round(n/7) of each class in test.
    assert Counter(y_te.tolist()) == {i: int(n / 7 + 0.5) for i, n in PER_CLASS.items() if int(n / 7 + 0.5)}
    assert Counter(y_tr.tolist()) + Counter(y_te.tolist()) == PER_CLASS
    assert summary.counts["test"]["T-shirt/top"] == 1 and summary.counts["train"]["Trouser"] == 6
    # sources.csv lines up with the IDX files: the image at each position is that packshot's crop view.
    rows = _sources(out)
    assert len(rows) == 25 and not {r["sha256"] for r in rows if r["split"] == "train"} & {
        r["sha256"] for r in rows if r["split"] == "test"}
    first_test = next(r for r in rows if r["split"] == "test" and r["index"] == "0")
    with Catalogue.open(catalogue, readonly=True) as cat:
        path = next(catalogue / i["path"] for i in cat.images() if i["sha256"] == first_test["sha256"])
    assert np.array_equal(x_te[0], convert_views(path)[0]) and y_te[0] == int(first_test["label"])
    assert rows[0]["name"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
    copy = next(r for r in rows if r["product_url"] == "http://shop.test/p/103")  # the surest of the two copies
    assert copy["duplicates"] == "2"
    loc = locate(out)
    assert loc.ok and loc.manifest == out / "dataset.json"


def test_a_changed_file_fails_and_official_folders_ignore_a_manifest(
        catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "ds"
    write_dataset(catalogue, out, "fmnist")
    monkeypatch.setattr("garment.data.OFFICIAL_DIRS", (out,))  # as if out were ~/.cache/garment/fashion-mnist
    with pytest.raises(ChecksumError, match="official Fashion-MNIST checksum"):
        load_split("train", out)
    monkeypatch.undo()
    from garment.data import write_idx

    x, y = load_split("test", out)
    write_idx(out / "t10k-images-idx3-ubyte.gz", 255 - x)
    with pytest.raises(ChecksumError, match="dataset.json"):
        load_split("test", out)


def test_train_one_epoch_on_the_fmnist_dataset(catalogue: Path, tmp_path: Path) -> None:
    from garment.train import preset, train

    out = tmp_path / "ds"
    write_dataset(catalogue, out, "fmnist", test_fraction=0.2)
    cfg = preset("shipped", epochs=1, batch_size=8, data_dir=str(out), threads=1, keep_in_scope=0.9,
                 arch_args={"widths": [8, 16]})
    card = train(cfg, tmp_path / "model")
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert 0.0 <= card.metrics["fashion_mnist_test_accuracy"] <= 1.0 and card.metrics["epochs"] == 1
    assert np.isfinite(card.other["threshold"])


def test_imagefolder_holds_the_originals(catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    summary = write_dataset(catalogue, out, "imagefolder")
    rows = _sources(out)
    files = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*/*.jpg"))
    assert files == sorted(r["file"] for r in rows) and len(files) == summary.total == 25
    for r in rows:
        assert r["file"] == f"{r['split']}/{FOLDERS[int(r['label'])]}/{r['sha256']}.jpg"
        assert _sha(out / r["file"]) == r["sha256"]
    assert (out / "train" / "0_T-shirt_top").is_dir() and not list(out.glob("*.gz"))
    assert sorted(FOLDERS) == list(FOLDERS)  # loaders that number sorted folders get labels 0-9


def test_parquet_has_hugging_face_image_and_class_label(catalogue: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from PIL import Image

    out = tmp_path / "ds"
    write_dataset(catalogue, out, "parquet")
    train, test = pq.read_table(out / "train.parquet"), pq.read_table(out / "test.parquet")
    assert train.num_rows + test.num_rows == 25 and test.num_rows == 4
    features = json.loads(train.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["image"] == {"_type": "Image"}
    assert features["label"] == {"names": list(CLASSES), "_type": "ClassLabel"}
    assert set(features) == set(train.column_names)
    row = train.slice(0, 1).to_pylist()[0]
    assert set(row["image"]) == {"bytes", "path"} and row["image"]["path"].endswith(".jpg")
    assert hashlib.sha256(row["image"]["bytes"]).hexdigest() == row["sha256"]
    assert Image.open(io.BytesIO(row["image"]["bytes"])).size[0] >= 60
    assert CLASSES[row["label"]] == row["label_name"] and row["label_source"] == "image"
    assert str(train.schema.field("label").type) == "int64"


def test_hugging_face_datasets_reads_both_when_installed(catalogue: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    write_dataset(catalogue, tmp_path / "pq", "parquet")
    ds = datasets.load_dataset("parquet", data_files={s: str(tmp_path / "pq" / f"{s}.parquet")
                                                      for s in ("train", "test")})
    assert ds["train"].features["label"].names == list(CLASSES) and ds["test"].num_rows == 4
    assert ds["train"][0]["image"].size[0] >= 60
    write_dataset(catalogue, tmp_path / "if", "imagefolder")
    folders = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "if"))
    assert folders["train"].features["label"].names == [FOLDERS[i] for i in sorted(PER_CLASS)]


def test_filters_human_labels_and_the_card(catalogue: Path, tmp_path: Path) -> None:
    with Catalogue.open(catalogue) as cat:
        ids = {r["url"]: int(r["id"]) for r in cat.products()}
        # Final labels decided by a person: the disputed photo settled as a Dress, a trouser corrected.
        cat.set_human_labels({ids["http://shop.test/p/104"]: "Dress", ids["http://shop.test/p/8"]: "Pullover",
                              ids["http://shop.test/p/102"]: "Bag"})  # a Bag, says a person; no packshot
    summary = write_dataset(catalogue, tmp_path / "h", "fmnist", only="human", test_fraction=0)
    assert summary.excluded["no packshot"] == 1
    assert summary.total == 2 and summary.sources == {"human": 2} and summary.counts["test"] == dict.fromkeys(
        CLASSES, 0)
    _, y = load_split("train", tmp_path / "h")
    assert sorted(y.tolist()) == [2, 3]
    # The human label wins the disputed pair; the confidence filter spares it.
    summary = write_dataset(catalogue, tmp_path / "c", "imagefolder", min_confidence=0.7)
    assert summary.excluded["below min confidence"] == sum(
        sum(0.5 + 0.05 * k < 0.7 for k in range(n)) for n in PER_CLASS.values()) - 1  # p/8 is a person's
    assert summary.sources["human"] == 2 and "same image, different labels" not in summary.excluded
    card = (tmp_path / "c" / "README.md").read_text(encoding="utf-8")
    for text in ("belong to the shop", "sources.csv", "| 3 | Dress |", "2: labelled by a person", "shop.test",
                 "model `m1`", "minimum confidence 0.7"):
        assert text in card, text


def test_refusals_and_rewrite(catalogue: Path, tmp_path: Path, cli,  # type: ignore[no-untyped-def]
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("garment.dataset.OFFICIAL_DIRS", (tmp_path / "fmnist",))
    with pytest.raises(GarmentError, match="where Fashion-MNIST itself is kept"):
        write_dataset(catalogue, tmp_path / "fmnist")
    with pytest.raises(GarmentError, match="format 'csv' unknown"):
        write_dataset(catalogue, tmp_path / "x", "csv")
    with pytest.raises(GarmentError, match="--only 'robot' unknown"):
        write_dataset(catalogue, tmp_path / "x", only="robot")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(GarmentError, match="not empty"):
        write_dataset(catalogue, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(GarmentError, match="no product .* qualifies"):
        write_dataset(catalogue, tmp_path / "x", min_confidence=1.0)
    # A dataset written before is replaced, format and all; nothing is left beside it.
    result = cli("dataset", "--catalogue", str(catalogue), "--out", str(tmp_path / "d"), "--format", "parquet")
    assert result.exit_code == 0, result.output
    assert "25 images (train 21, test 4); labels from image 25" in result.output
    result = cli("dataset", "--catalogue", str(catalogue), "--out", str(tmp_path / "d"))
    assert result.exit_code == 0, result.output
    assert not list((tmp_path / "d").glob("*.parquet")) and (tmp_path / "d" / "train-images-idx3-ubyte.gz").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    result = cli("data", "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 0 and "(a garment dataset)" in result.output

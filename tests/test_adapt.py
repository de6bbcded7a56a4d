"""Shop-adaptive labels end to end: a blind shop crawled, adapted to, classified with text fused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from garment import label_index
from garment.catalogue_classify import catalogue_model, classify_catalogue
from garment.errors import GarmentError
from garment.labels.adapt import UNLABELLED, AdaptConfig, adapt_catalogue, check_evidence, split_holdout
from garment.models import META_FILE
from garment.scrape import CrawlConfig, crawl
from garment.shop import ShopConfig, start_shop
from garment.store import Catalogue
from needs import has_fmnist, needs_fmnist

REPO = Path(__file__).resolve().parents[1]
REAL_PHOTOS = Path(os.environ.get("GARMENT_DEV_PHOTOS", REPO.parent / "shared" / "realphotos-dev"))



def _accuracy(rows: list[dict[str, Any]], truth: dict[str, int | None], key: str) -> float:
    scored = [r for r in rows if truth.get(r["sku"]) is not None]
    return sum(label_index(r[key]) == truth[r["sku"]] for r in scored) / len(scored)


def test_split_holdout_is_stratified_and_disjoint() -> None:
    labels = np.array([0] * 20 + [1] * 10 + [2] * 3 + [-1] * 8 + [UNLABELLED] * 5)
    train, hold = split_holdout(labels, 0.2, seed=0)
    assert not set(train) & set(hold)
    assert set(train) | set(hold) == set(np.flatnonzero(labels != UNLABELLED))
    assert sorted(labels[hold].tolist()) == [-1, -1, 0, 0, 0, 0, 1, 1]  # class 2 (3 items) all trained on


def test_too_little_text_evidence_is_refused_with_the_counts() -> None:
    labels = np.array([3] * 10 + [UNLABELLED] * 90)
    with pytest.raises(GarmentError, match=r"10 of 100 products .* in 1 class"):
        check_evidence(labels, AdaptConfig())


@pytest.fixture(scope="module")
def blind_catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int | None]]:
    if not has_fmnist():
        pytest.skip("Fashion-MNIST not found (`make data` installs it)")
    folder = tmp_path_factory.mktemp("blind") / "catalogue"
    with start_shop(ShopConfig(n_products=120, blind=True, seed=11)) as shop:
        crawl(CrawlConfig([shop.url], out=folder, delay=0.0, concurrency=8, log_level="WARNING"))
        truth = {p.sku: p.label_index for p in shop.products}
    return folder, truth


@needs_fmnist
def test_blind_shop_text_fused_labels_beat_the_image_alone(blind_catalogue: tuple[Path, dict[str, int | None]],
                                                           tmp_path: Path) -> None:
    folder, truth = blind_catalogue
    result = classify_catalogue(folder)
    assert result.products == 120 and result.text_labelled > 60
    assert sum(result.sources.values()) == 120
    with Catalogue.open(folder, create=False) as cat:
        rows = cat.products_with_labels(result.model_id)
        # The shop's pages named no class: the text labels come from names and descriptions.
        assert all(r["category"] in (None, "Women", "Men", "Footwear", "Accessories") or ">" in r["category"]
                   for r in rows)
    image, fused = _accuracy(rows, truth, "image_label"), _accuracy(rows, truth, "label")
    assert fused > image
    assert {r["label_source"] for r in rows} <= {"image", "text", "agree"}
    # --no-text keeps the image answers only: no final labels of the fused kind.
    plain = classify_catalogue(folder, text=False)
    assert plain.sources == {} and plain.reused == 120


@needs_fmnist
def test_adapt_writes_a_measured_model_and_makes_it_the_catalogues(
        blind_catalogue: tuple[Path, dict[str, int | None]]) -> None:
    folder, truth = blind_catalogue
    stages: dict[str, int] = {}
    result = adapt_catalogue(folder, config=AdaptConfig(steps=30, min_labelled=20),
                             progress=lambda stage, done, total: stages.__setitem__(stage, done))
    assert stages == {"convert": 120, "train": 30}
    out = Path(result.model_dir)
    assert out.parent == folder / "adapted" and (out / "model.safetensors").is_file()
    card = json.loads((out / META_FILE).read_text())
    adaptation = card["extra"]["adaptation"]
    assert adaptation["base_model"].startswith("default-")
    assert sum(adaptation["trained_on"].values()) > 20 and adaptation["held_out"] > 0
    assert 0.0 < card["metrics"]["fashion_mnist_test_accuracy"] <= 1.0
    assert card["metrics"]["fashion_mnist_test_accuracy"] == result.fashion_mnist_accuracy > 0.8
    assert result.holdout_accuracy is not None and card["extra"]["fusion"]["temperature"] > 0
    with Catalogue.open(folder, create=False) as cat:
        assert catalogue_model(cat) == out
    after = classify_catalogue(folder)  # the catalogue's own model now
    assert after.model_id.startswith("shop-1-") and after.classified == 120
    with Catalogue.open(folder, create=False) as cat:
        rows = cat.products_with_labels(after.model_id)
    assert _accuracy(rows, truth, "label") >= _accuracy(rows, truth, "image_label")
    # A second adaptation gets its own folder; the first stays.
    again = adapt_catalogue(folder, config=AdaptConfig(steps=2, min_labelled=20))
    assert Path(again.model_dir).name == "shop-2" and out.is_dir()


def test_adapt_refuses_a_catalogue_without_text(tmp_path: Path, make_photo: Any) -> None:
    folder = tmp_path / "cat"
    with Catalogue.open(folder) as cat:
        for i in range(5):
            path = make_photo(folder / "images" / f"{i}.png", i % 3)
            cat.save_product({"url": f"http://shop.test/p/{i}", "name": f"Item {i}"},
                             {"url": f"http://shop.test/{i}.png", "status": "ok",
                              "path": str(path.relative_to(folder)), "width": 60, "height": 80})
    with pytest.raises(GarmentError, match=r"too little text evidence to adapt: 0 of 5 products"):
        adapt_catalogue(folder)


@pytest.mark.skipif(not (REAL_PHOTOS / "labels.csv").is_file(), reason=f"{REAL_PHOTOS} not found")
@needs_fmnist
def test_dev_photos_blind_shop_targets(tmp_path: Path) -> None:
    """Issue targets on the dev photos in a blind shop: scrape -> adapt -> classify, scored
    against labels.csv (which garment never reads)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("blind_end_to_end", REPO / "scripts" / "blind_end_to_end.py")
    assert spec and spec.loader
    e2e = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(e2e)
    result = e2e.run(REAL_PHOTOS, tmp_path, AdaptConfig())
    views = result["views"]
    fused, adapted = views["fused, adapted model"]["all"], views["image only, adapted model (argmax)"]["all"]
    assert fused["overall"] >= 0.90 and fused["in_scope"] >= 0.92
    assert adapted["in_scope"] >= 0.82
    assert result["adaptation"]["fashion_mnist_accuracy"] >= 0.92

"""Tests for garment.evaluate and `garment evaluate`: metrics against brute-force counts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from garment import CLASSES
from garment.classify import Classifier, ClassifyConfig
from garment.cli import app
from garment.errors import GarmentError
from garment.evaluate import (
    EvaluateConfig,
    auroc,
    confusion_matrix,
    labelled_metrics,
    per_class_accuracy,
    read_labels,
    run,
)


def _brute_auroc(pos: list[float], neg: list[float]) -> float:
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auroc_matches_pairwise_counting_with_ties() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        pos = rng.integers(0, 5, rng.integers(1, 9)).astype(float)  # small range: many ties
        neg = rng.integers(0, 5, rng.integers(1, 9)).astype(float)
        assert auroc(pos, neg) == pytest.approx(_brute_auroc(list(pos), list(neg)))
    assert auroc(np.array([1.0, 2.0]), np.array([0.0])) == 1.0
    assert auroc(np.array([0.0]), np.array([1.0, 2.0])) == 0.0
    assert auroc(np.array([0.5]), np.array([])) is None


def test_confusion_and_per_class_match_loops() -> None:
    truth = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(truth, pred, 4)
    brute = np.zeros((4, 4), int)
    for t, p in zip(truth, pred, strict=True):
        brute[t, p] += 1
    assert (cm == brute).all()
    acc = per_class_accuracy(cm)
    assert acc[:3] == pytest.approx([0.5, 1.0, 2 / 3]) and np.isnan(acc[3])


def test_labelled_metrics_on_a_hand_made_case() -> None:
    classes = list(CLASSES)
    truth = np.array([0, 1, 1, -1, -1])
    probs = np.full((5, 10), 0.01)
    for i, c in enumerate([0, 1, 3, 4, 0]):
        probs[i, c] = 0.91
    score = np.array([0.9, 0.8, 0.3, 0.2, 0.7])
    m = labelled_metrics(truth, probs, score, 0.5, classes)
    assert m["in_scope_accuracy"] == pytest.approx(2 / 3)  # row 2 argmax 3, truth 1
    # final labels: 0, 1, other, other, 0 -> right on rows 0, 1, 3
    assert m["overall_accuracy"] == pytest.approx(3 / 5)
    assert m["other_auroc"] == pytest.approx(_brute_auroc([0.9, 0.8, 0.3], [0.2, 0.7]))
    assert m["per_class"]["T-shirt/top"] == 1.0 and m["per_class"]["Trouser"] == 0.5
    assert m["per_class"]["Dress"] is None
    assert (m["n"], m["n_in_scope"], m["n_other"]) == (5, 3, 2)


@pytest.fixture
def labelled(tmp_path: Path, make_photo) -> Path:
    """Twelve photos with labels in -1..9 and a labels.csv in the dev set's format."""
    root = tmp_path / "set"
    labels = [0, 1, 3, 5, 8, 9, -1, -1, 2, 7, 4, -1]
    root.mkdir()
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "label_index", "retailer"])
        for i, lab in enumerate(labels):
            name = f"images/x{i}.jpg"
            make_photo(root / name, i, size=(40 + 7 * i, 90 - 3 * i))
            w.writerow([name, "whatever", lab, "shop"])
    return root / "labels.csv"


def test_evaluate_gives_the_brute_force_counts(labelled: Path, tiny_model: Path, tmp_path: Path) -> None:
    # Brute force: classify each photo on its own, count by hand.
    files, truth = read_labels(labelled)
    clf = Classifier.load(config=ClassifyConfig(model_dir=tiny_model, cache_dir=tmp_path))
    preds = [clf.predict([f])[0] for f in files]
    threshold = float(np.median([p.score for p in preds]))  # half "other", half in scope
    right_in = n_in = right_all = 0
    cm = [[0] * 10 for _ in range(10)]
    for p, t in zip(preds, truth, strict=True):
        best = int(np.argmax(p.probs))
        right_all += int((best if p.score >= threshold else -1) == t)
        if t >= 0:
            n_in += 1
            right_in += int(best == t)
            cm[t][best] += 1
    pos = [p.score for p, t in zip(preds, truth, strict=True) if t >= 0]
    neg = [p.score for p, t in zip(preds, truth, strict=True) if t < 0]

    cfg = ClassifyConfig(model_dir=tiny_model, cache_dir=tmp_path, threshold=threshold, workers=1)
    m = run(EvaluateConfig(labels=labelled, json_path=tmp_path / "m.json", plots_dir=tmp_path / "plots",
                           classify=cfg))
    assert m["n"] == 12 and m["n_failed"] == 0
    assert m["in_scope_accuracy"] == pytest.approx(right_in / n_in)
    assert m["overall_accuracy"] == pytest.approx(right_all / 12)
    assert m["other_auroc"] == pytest.approx(_brute_auroc(pos, neg))
    assert m["confusion"] == cm
    saved = json.loads((tmp_path / "m.json").read_text())
    for key in ("in_scope_accuracy", "other_auroc", "overall_accuracy", "per_class", "confusion", "n"):
        assert saved[key] == m[key]
    assert saved["config"]["classify"]["threshold"] == threshold
    for png in ("confusion.png", "mistakes.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"


def test_unreadable_photos_are_listed_not_scored(labelled: Path, tiny_model: Path, tmp_path: Path) -> None:
    (labelled.parent / "images" / "x0.jpg").write_bytes(b"garbage")
    cfg = ClassifyConfig(model_dir=tiny_model, cache_dir=tmp_path, workers=1)
    m = run(EvaluateConfig(labels=labelled, classify=cfg))
    assert m["n"] == 11 and m["n_failed"] == 1
    assert m["failed"][0]["file"].endswith("x0.jpg") and m["failed"][0]["error"].startswith("not-an-image")


def test_bad_labels_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\na.jpg,dress\n")
    with pytest.raises(GarmentError, match="label_index"):
        read_labels(bad)
    bad.write_text("file,label_index\na.jpg,12\n")
    with pytest.raises(GarmentError, match=r"bad.csv:2"):
        read_labels(bad)


def test_fashion_mnist_mode(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import garment.data

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = np.arange(30) % 10
    monkeypatch.setattr(garment.data, "load_split", lambda split, data_dir=None: (images, labels))
    cfg = ClassifyConfig(model_dir=tiny_model, cache_dir=tmp_path)
    m = run(EvaluateConfig(fashion_mnist=True, plots_dir=tmp_path, json_path=tmp_path / "f.json",
                           classify=cfg))
    probs, _ = Classifier.load(config=cfg).predict_arrays(images)
    assert m["accuracy"] == float((probs.argmax(1) == labels).mean())
    assert np.array(m["confusion"]).sum() == 30 and set(m["per_class"]) == set(CLASSES)
    assert {"accuracy", "per_class", "confusion"} <= set(json.loads((tmp_path / "f.json").read_text()))
    assert (tmp_path / "confusion.png").is_file()


def test_cli_needs_exactly_one_source(labelled: Path) -> None:
    for args in ([], [str(labelled), "--fashion-mnist"]):
        result = CliRunner().invoke(app, ["evaluate", *args])
        # A runtime error: one line on stderr, exit status 1, no traceback.
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert "exactly one" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_evaluate_prints_and_writes(labelled: Path, tiny_model: Path, tmp_path: Path,
                                       onnx_cache: Path) -> None:
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["evaluate", str(labelled), "--model", str(tiny_model),
                                      "--json", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "in-scope accuracy" in result.output and "other AUROC" in result.output
    assert json.loads(out.read_text())["n"] == 12


def test_cli_help() -> None:
    result = CliRunner().invoke(app, ["evaluate", "--help"])
    assert result.exit_code == 0
    for flag in ("--fashion-mnist", "--model", "--json", "--plots", "--data-dir"):
        assert flag in result.output


def test_record_writes_the_photo_metrics_into_the_model_card(labelled: Path, tiny_model: Path,
                                                             tmp_path: Path, onnx_cache: Path) -> None:
    import shutil

    from garment.models import read_card

    model = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    result = CliRunner().invoke(app, ["evaluate", str(labelled), "--model", str(model), "--record"])
    assert result.exit_code == 0, result.output
    assert f"recorded in {model / 'model.json'}" in result.output
    real = read_card(model).metrics["real_photo"]
    m = run(EvaluateConfig(labels=labelled, classify=ClassifyConfig(model_dir=model, cache_dir=tmp_path)))
    assert real["in_scope_accuracy"] == m["in_scope_accuracy"] and real["n"] == 12
    assert real["dataset"] == labelled.parent.name and real["backend"] == m["backend"]
    with pytest.raises(GarmentError, match="--record needs"):
        run(EvaluateConfig(fashion_mnist=True, record=True))

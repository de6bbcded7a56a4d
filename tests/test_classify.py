"""Tests for garment.classify and `garment classify`: streaming, failures as rows, outputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from garment import CLASSES, OTHER
from garment.classify import (
    COLUMNS,
    Classifier,
    ClassifyConfig,
    classify,
    export_onnx,
    iter_images,
    openvino_precision,
    write_predictions,
)
from garment.cli import app
from garment.errors import GarmentError


@pytest.fixture
def folder(tmp_path: Path, make_photo) -> Path:
    """Five photos in two folders, a corrupt JPEG, a truncated JPEG and a text file."""
    root = tmp_path / "photos"
    for i in range(3):
        make_photo(root / f"p{i}.jpg", i)
    for i in range(2):
        make_photo(root / "sub" / f"q{i}.png".replace(".png", ".jpg"), i + 2)
    (root / "broken.jpg").write_bytes(b"this is not a JPEG")
    whole = (root / "p0.jpg").read_bytes()
    (root / "sub" / "cut.jpg").write_bytes(whole[: len(whole) // 3])
    (root / "notes.txt").write_text("not an image")
    return root


def _config(model: Path, cache: Path, **kw) -> ClassifyConfig:
    return ClassifyConfig(model_dir=model, cache_dir=cache, **kw)


def test_iter_images_walks_recursively_in_order(folder: Path) -> None:
    names = [p.relative_to(folder).as_posix() for p in iter_images([folder])]
    assert names == ["broken.jpg", "p0.jpg", "p1.jpg", "p2.jpg", "sub/cut.jpg", "sub/q0.jpg", "sub/q1.jpg"]
    assert list(iter_images([folder / "notes.txt"])) == [folder / "notes.txt"]  # named: tried
    with pytest.raises(GarmentError, match="no such file"):
        list(iter_images([folder / "missing"]))


@pytest.mark.parametrize("workers", [1, 2])
def test_corrupt_files_are_rows_and_the_rest_is_classified(
    folder: Path, tiny_model: Path, tmp_path: Path, workers: int
) -> None:
    out = io.StringIO()
    summary = classify([folder], out, _config(tiny_model, tmp_path, workers=workers, batch_size=2))
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [Path(r["path"]).name for r in rows] == [
        "broken.jpg", "p0.jpg", "p1.jpg", "p2.jpg", "cut.jpg", "q0.jpg", "q1.jpg"]
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["broken.jpg"]["status"] == "error"
    assert by_name["broken.jpg"]["error"].startswith("not-an-image: ")
    assert by_name["cut.jpg"]["status"] == "error" and by_name["cut.jpg"]["error"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 5 and all(r["error"] == "" for r in ok)
    assert (summary.n, summary.ok, summary.failed) == (7, 5, 2)
    assert sum(summary.labels.values()) == 5


def test_workers_give_the_same_rows_as_one_process(folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    paths = list(iter_images([folder])) * 3
    one = list(Classifier.load(config=_config(tiny_model, tmp_path, workers=1, batch_size=4)).stream(paths))
    two = Classifier.load(config=_config(tiny_model, tmp_path, workers=2, batch_size=4))
    assert [p.row() for p in two.stream(paths, total=len(paths))] == [p.row() for p in one]


def test_stream_reads_paths_lazily_with_bounded_chunks_in_flight(
    tiny_model: Path, tmp_path: Path, make_photo
) -> None:
    photo = make_photo(tmp_path / "a.jpg", 0)
    consumed = 0

    def paths():
        nonlocal consumed
        for _ in range(160):
            consumed += 1
            yield photo

    clf = Classifier.load(config=_config(tiny_model, tmp_path, workers=2, batch_size=4))
    seen = []
    for i, pred in enumerate(clf.stream(paths())):
        if i % 20 == 0:
            seen.append(consumed - i)  # read ahead of what was yielded
        assert pred.status == "ok"
    assert i == 159
    assert max(seen) <= (2 * 2 + 1) * 4  # at most 2 chunks per worker in flight, plus one


def test_csv_and_jsonl_parse(folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    preds = Classifier.load(config=_config(tiny_model, tmp_path, workers=1)).stream(iter_images([folder]))
    preds = list(preds)
    for fmt in ("csv", "jsonl"):
        out = io.StringIO()
        write_predictions(preds, out, fmt)
        if fmt == "csv":
            reader = csv.DictReader(io.StringIO(out.getvalue()))
            rows = list(reader)
            assert tuple(reader.fieldnames or ()) == COLUMNS
        else:
            rows = [json.loads(line) for line in out.getvalue().splitlines()]
            assert all(tuple(r) == COLUMNS for r in rows)
        assert len(rows) == len(preds)
        for r in rows:
            if r["status"] == "ok":
                assert r["label"] in (*CLASSES, OTHER)
                assert int(r["label_index"]) == (CLASSES.index(r["label"]) if r["label"] != OTHER else -1)
                assert 0.0 <= float(r["confidence"]) <= 1.0
                top3 = [t.rsplit(":", 1) for t in r["top3"].split("|")]
                assert len(top3) == 3 and all(n in CLASSES for n, _ in top3)
                assert float(top3[0][1]) == pytest.approx(float(r["confidence"]), abs=0.006)


def test_threshold_decides_other(tiny_model: Path, tmp_path: Path, make_photo) -> None:
    photo = make_photo(tmp_path / "a.jpg", 0)
    never = Classifier.load(config=_config(tiny_model, tmp_path, threshold=0.0)).predict([photo])[0]
    always = Classifier.load(config=_config(tiny_model, tmp_path, threshold=1.01)).predict([photo])[0]
    assert never.label in CLASSES and never.label_index == CLASSES.index(never.label)
    assert (always.label, always.label_index) == (OTHER, -1)
    assert always.confidence == never.confidence  # the threshold changes the label only
    card_default = Classifier.load(config=_config(tiny_model, tmp_path))
    assert card_default.threshold == 0.5


def test_predict_accepts_paths_bytes_images_and_arrays(tiny_model: Path, tmp_path: Path, make_photo) -> None:
    from garment.convert import convert

    photo = make_photo(tmp_path / "a.jpg", 1)
    clf = Classifier.load(config=_config(tiny_model, tmp_path))
    preds = clf.predict([photo, photo.read_bytes(), Image.open(photo), convert(photo), b"junk"])
    assert [p.status for p in preds] == ["ok", "ok", "ok", "ok", "error"]
    assert len({p.top3 for p in preds[:4]}) == 1  # same image, same answer whatever the input
    probs, score = clf.predict_arrays(np.stack([convert(photo)] * 3))
    assert probs.shape == (3, 10) and score.shape == (3,)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5) and not np.isnan(probs).any()


def test_two_framing_recipe_gives_the_same_scores_on_every_backend(tmp_path: Path, make_photo) -> None:
    import torch

    from garment.convert import convert_views
    from garment.models import InferenceHead, ModelCard, create_model, load_model, save_model

    torch.manual_seed(0)
    card = ModelCard("default", recipe={"params": {"framings": ["crop", "frame"]}},
                     other={"score": "energy", "threshold": 0.0, "tta": ["identity", "hflip"],
                            "size_prior": {"level": 32, "floor": 0.15}})
    folder = save_model(tmp_path / "two-views", create_model("default"), card)
    # Several photos in one batch: a per-photo score must not mix the batch's photos.
    photos = [make_photo(tmp_path / f"{i}.jpg", i) for i in (3, 5, 8)]
    views = np.stack([convert_views(p, card.recipe) for p in photos])
    assert views.shape == (3, 2, 28, 28)
    model, loaded = load_model(folder)
    with torch.no_grad():
        want_p, want_s = (t.numpy() for t in InferenceHead(model.eval(), loaded).eval()(
            torch.from_numpy(views).float() / 255))
    assert np.ptp(want_s) > 1e-3
    for backend in ("openvino", "onnx", "torch"):
        # OpenVINO computes in bf16 on CPUs that do so natively: about 3 significant digits.
        tol = 1e-2 if backend == "openvino" and openvino_precision() == "bf16" else 1e-5
        for workers in (1, 2):
            clf = Classifier.load(config=_config(folder, tmp_path, backend=backend, workers=workers))
            preds = list(clf.stream(photos))
            assert [p.status for p in preds] == ["ok"] * 3
            assert np.allclose(np.stack([p.probs for p in preds]), want_p, atol=tol), backend
            assert np.allclose([p.score for p in preds], want_s, atol=10 * tol), backend
        # Already-converted input: both views, or one image standing for every view.
        probs, _ = clf.predict_arrays(views)
        assert np.allclose(probs, want_p, atol=tol)
        assert clf.predict_arrays(np.stack([views[0, 0]] * 2))[0].shape == (2, 10)


def test_onnx_matches_eager_torch_and_is_cached(tiny_model: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    onnx = Classifier.load(config=_config(tiny_model, tmp_path, backend="onnx"))
    torch_ = Classifier.load(config=_config(tiny_model, tmp_path, backend="torch"))
    (p1, s1), (p2, s2) = onnx.predict_arrays(images), torch_.predict_arrays(images)
    assert np.allclose(p1, p2, atol=1e-5) and np.allclose(s1, s2, atol=1e-5)
    path = export_onnx(tiny_model, tmp_path)
    mtime = path.stat().st_mtime_ns
    assert export_onnx(tiny_model, tmp_path) == path and path.stat().st_mtime_ns == mtime
    assert path.parent == tmp_path  # never inside the model or the package


def test_auto_backend_prefers_openvino_then_onnx_then_torch_with_a_log_line(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import importlib.util

    assert Classifier.load(config=_config(tiny_model, tmp_path)).spec.kind == "openvino"
    real = importlib.util.find_spec
    missing: set[str] = {"openvino"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))
    assert Classifier.load(config=_config(tiny_model, tmp_path)).spec.kind == "onnx"
    missing.add("onnxruntime")
    clf = Classifier.load(config=_config(tiny_model, tmp_path))
    assert clf.spec.kind == "torch" and "neither openvino nor onnxruntime is installed" in caplog.text
    probs, _ = clf.predict_arrays(np.zeros((2, 28, 28), np.uint8))
    assert probs.shape == (2, 10)


def test_bad_config_is_a_clear_error(tiny_model: Path) -> None:
    for bad in (dict(workers=-1), dict(batch_size=0), dict(backend="tf")):
        with pytest.raises(GarmentError):
            Classifier.load(tiny_model, ClassifyConfig(**bad))
    with pytest.raises(GarmentError, match="no image files"):
        classify([Path(tiny_model)], io.StringIO(), ClassifyConfig(model_dir=tiny_model))


def test_cli_writes_rows_and_exits_zero_despite_failures(
    folder: Path, tiny_model: Path, tmp_path: Path, onnx_cache: Path
) -> None:
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["classify", str(folder), "--model", str(tiny_model), "--out",
                                      str(out), "--format", "jsonl", "--workers", "1", "--backend", "onnx",
                                      "-q"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and sum(r["status"] == "error" for r in rows) == 2
    assert "7 images: 5 classified, 2 failed" in result.output
    assert onnx_cache.is_dir()


def test_cli_exits_nonzero_when_nothing_could_be_done(
    folder: Path, tiny_model: Path, tmp_path: Path, onnx_cache: Path
) -> None:
    result = CliRunner().invoke(app, ["classify", str(folder / "broken.jpg"), "--model", str(tiny_model),
                                      "--out", str(tmp_path / "o.csv"), "-q"])
    assert result.exit_code == 1
    assert "0 classified, 1 failed" in result.output


def test_cli_help() -> None:
    result = CliRunner().invoke(app, ["classify", "--help"])
    assert result.exit_code == 0
    for flag in ("--model", "--out", "--format", "--threshold", "--workers", "--batch-size"):
        assert flag in result.output


def test_openvino_is_used_without_its_telemetry() -> None:
    # Importing OpenVINO's model converter reports the import to Intel from a child process;
    # the openvino backend must load the runtime alone (checked in a fresh interpreter).
    import subprocess
    import sys

    code = ("import sys; from garment.classify import openvino_precision; openvino_precision(); "
            "assert sys.modules.get('openvino.tools.ovc') is None, 'converter imported'; "
            "assert 'openvino_telemetry' not in sys.modules, 'telemetry imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

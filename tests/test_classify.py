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


# --------------------------------------------------------------------------- the ONNX cache


def test_onnx_cache_is_the_users_own_private_folder(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat

    import garment.classify.engine
    from garment.cache import user_cache_dir

    monkeypatch.setattr(garment.classify.engine, "CACHE_DIR", None)  # the default: read at each export
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    shared = tmp_path / "xdg" / "garment"
    shared.mkdir(parents=True)
    shared.chmod(0o777)  # left open by someone: tightened before use
    path = export_onnx(tiny_model)
    assert path.parent == shared / "onnx" and path.is_file()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored (XDG spec)
    assert user_cache_dir() == Path.home() / ".cache" / "garment"


def test_a_planted_or_stale_onnx_graph_is_exported_again_never_run(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    import torch

    from garment.cache import sidecar_of
    from garment.models import ModelCard, create_model, save_model

    torch.manual_seed(1)  # another network: the planted graph answers differently
    card = ModelCard("default", recipe={}, other={"score": "msp", "threshold": 0.5, "tta": ["identity"]})
    other = save_model(tmp_path / "other", create_model("default"), card)
    cache = tmp_path / "cache"
    genuine, planted = export_onnx(tiny_model, cache), export_onnx(other, tmp_path / "elsewhere")
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    want = Classifier.load(config=_config(tiny_model, cache, backend="torch")).predict_arrays(images)[0]

    def onnx_probs(model: Path) -> np.ndarray:
        return Classifier.load(config=_config(model, cache, backend="onnx")).predict_arrays(images)[0]

    assert not np.allclose(Classifier.load(config=_config(other, tmp_path / "elsewhere", backend="onnx"))
                           .predict_arrays(images)[0], want, atol=1e-3)
    plants = [
        [(planted, genuine)],  # the graph swapped under the genuine sidecar
        [(planted, genuine), (sidecar_of(planted), sidecar_of(genuine))],  # with its own sidecar
        [(planted, genuine)],  # and without any sidecar (removed below)
    ]
    for i, swaps in enumerate(plants):
        if i == 2:
            sidecar_of(genuine).unlink()
        for src, dst in swaps:
            shutil.copyfile(src, dst)
        assert np.allclose(onnx_probs(tiny_model), want, atol=1e-5), i
        assert genuine.read_bytes() != planted.read_bytes()


def test_the_shipped_model_carries_its_own_matching_onnx_export(tmp_path: Path) -> None:
    from garment.cache import is_valid
    from garment.classify.engine import DEFAULT_MODEL_DIR, ONNX_FILE, ModelInfo, _cache_inputs

    shipped = DEFAULT_MODEL_DIR / ONNX_FILE
    assert is_valid(shipped, _cache_inputs(ModelInfo.read(None))), "run `make onnx` after retraining"
    assert export_onnx(None, tmp_path / "cache") == shipped
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_model_folders_own_export_is_used_only_while_it_matches(tiny_model: Path, tmp_path: Path) -> None:
    import shutil
    import stat

    from garment.classify import write_model_onnx
    from garment.classify.engine import ONNX_FILE

    model = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    own = write_model_onnx(model)
    assert own == model / ONNX_FILE and stat.S_IMODE(own.stat().st_mode) == 0o644
    assert write_model_onnx(model) == own  # kept as it is
    assert export_onnx(model, tmp_path / "cache") == own
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    want = Classifier.load(config=_config(model, tmp_path / "cache", backend="torch")).predict_arrays(images)[0]
    got = Classifier.load(config=_config(model, tmp_path / "cache", backend="openvino")).predict_arrays(images)[0]
    assert np.allclose(got, want, atol=2e-2)  # bf16 on CPUs that have it

    # Retrained in place (other weights), the folder's export is stale: a fresh one is made and run.
    import torch

    from garment.models import create_model, load_model, save_model

    torch.manual_seed(7)
    _, card = load_model(model)
    save_model(model, create_model("default"), card)
    fresh = export_onnx(model, tmp_path / "cache")
    assert fresh.parent == tmp_path / "cache" and fresh != own
    want = Classifier.load(config=_config(model, tmp_path / "cache", backend="torch")).predict_arrays(images)[0]
    got = Classifier.load(config=_config(model, tmp_path / "cache", backend="onnx")).predict_arrays(images)[0]
    assert np.allclose(got, want, atol=1e-5)


def test_a_missing_runtime_or_pytorch_is_one_line_naming_its_extra(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from garment.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"--backend onnx needs onnxruntime.*'garment\[onnxruntime\]'"):
        Classifier.load(config=_config(tiny_model, tmp_path, backend="onnx"))
    with pytest.raises(MissingExtraError, match=r"--backend torch needs torch.*'garment\[train\]'"):
        Classifier.load(config=_config(tiny_model, tmp_path, backend="torch"))
    with pytest.raises(MissingExtraError, match=r"exporting the model in .* needs torch.*'garment\[train\]'"):
        export_onnx(tiny_model, tmp_path)  # no model.onnx of its own: exporting needs PyTorch
    assert Classifier.load(config=_config(None, tmp_path)).predict_arrays(np.zeros((1, 28, 28), np.uint8))


# --------------------------------------------------------------------------- output folders


def test_cli_out_in_a_missing_folder_creates_it(
    folder: Path, tiny_model: Path, tmp_path: Path, onnx_cache: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "missing" / "dir" / "x.csv"
    result = cli("classify", str(folder / "p0.jpg"), "--model", str(tiny_model), "--out", str(out),
                 "--workers", "1", "-q")
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 2  # header + one row


def test_cli_out_where_no_folder_can_be_is_one_clear_line(
    folder: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from garment.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        main(["classify", str(folder / "p0.jpg"), "--model", str(tiny_model), "--out",
              str(blocker / "x.csv"), "-q"])
    assert exit_.value.code == 1  # a runtime failure
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {blocker / 'x.csv'}"), err


# --------------------------------------------------------------------------- large images


def _big_jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    """A grey packshot-like JPEG: a dark block on white, optionally with an EXIF rotation."""
    from PIL import ImageDraw

    img = Image.new("L", size, 255)
    w, h = size
    ImageDraw.Draw(img).rectangle([w // 5, h // 8, 4 * w // 5, 7 * h // 8], fill=40)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80, exif=exif.tobytes())
    return buf.getvalue()


def _claiming(jpeg: bytes, size: tuple[int, int]) -> bytes:
    """``jpeg`` with its frame header claiming ``size`` (a decode bomb costs a few bytes)."""
    at = jpeg.index(b"\xff\xc0")  # baseline frame: length, precision, height, width
    w, h = size
    return jpeg[: at + 5] + h.to_bytes(2, "big") + w.to_bytes(2, "big") + jpeg[at + 9 :]


@pytest.mark.parametrize("orientation", [1, 6])  # libjpeg-turbo's path; Pillow's (EXIF rotation)
def test_a_6000x8000_jpeg_the_crawl_stores_is_classified(
    tiny_model: Path, tmp_path: Path, orientation: int
) -> None:
    from garment.convert import decoded_pixels, open_image
    from garment.scrape.images import check_image

    data = _big_jpeg((6000, 8000), orientation)
    assert check_image(data).status == "ok"
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    small = open_image(path)  # decoded at 1/8 scale, then turned upright
    assert small.size == ((750, 1000) if orientation == 1 else (1000, 750))
    assert decoded_pixels("JPEG", 6000, 8000) == 750 * 1000
    (row,) = Classifier.load(config=_config(tiny_model, tmp_path / "cache", backend="onnx")).predict([path])
    assert row.status == "ok", row.error


def test_crawl_and_classify_refuse_the_same_decode_bombs(tmp_path: Path) -> None:
    from garment.convert import MAX_PIXELS, ConversionError, convert
    from garment.scrape.images import check_image

    def png(size: tuple[int, int]) -> bytes:
        buf = io.BytesIO()
        Image.new("1", size, 1).save(buf, "PNG")
        return buf.getvalue()

    jpeg = _big_jpeg((64, 80))
    cases = {  # name: (bytes, refused as too many pixels)
        "png 6000x6000": (png((6000, 6000)), False),
        "png 7000x7000": (png((7000, 7000)), True),  # 49 M pixels decoded in full
        "jpeg claiming 12000x14000": (_claiming(jpeg, (12000, 14000)), False),  # 1/8: 2.6 M
        "jpeg claiming 60000x60000": (_claiming(jpeg, (60000, 60000)), True),  # 56 M at 1/8
        "jpeg claiming 65000x1000": (_claiming(jpeg, (65000, 1000)), False),
    }
    for name, (data, bomb) in cases.items():
        crawl = check_image(data, max_px=100_000)  # the pixel rule alone, not the side limit
        try:
            convert(data)
            reason = "ok"
        except ConversionError as exc:
            reason = exc.reason
        assert (crawl.status == "too_large") == bomb == (reason == "too-many-pixels"), \
            (name, crawl, reason)
    assert MAX_PIXELS < 7000 * 7000

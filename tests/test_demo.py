"""garment demo end to end: the local shop crawled over HTTP, classified, reported."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from garment import CLASSES, OTHER
from garment.classify import ClassifyConfig
from garment.demo import STATE_FILE, DemoConfig, _prepare_folder, run_demo
from garment.errors import GarmentError
from garment.shop import SCRIPT_NAME
from garment.store import Catalogue
from needs import needs_fmnist

REPO = Path(__file__).resolve().parents[1]
REAL_PHOTOS = Path(os.environ.get("GARMENT_DEV_PHOTOS", REPO.parent / "shared" / "realphotos-dev"))
N_PRODUCTS = 60




@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, float]]:
    """`garment demo --products 60` run once through the CLI: (folder, output, seconds)."""
    from typer.testing import CliRunner

    import garment.classify.engine
    from garment.cli import app

    out = tmp_path_factory.mktemp("demo") / "demo-out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(garment.classify.engine, "CACHE_DIR", tmp_path_factory.mktemp("onnx"))
        started = time.monotonic()
        result = CliRunner().invoke(app, ["demo", "--out", str(out), "--products",
                                          str(N_PRODUCTS)], catch_exceptions=False)
        seconds = time.monotonic() - started
        assert result.exit_code == 0, result.output
        yield out, result.output, seconds


@needs_fmnist
@pytest.mark.slow
def test_demo_crawls_classifies_and_reports(demo_out: tuple[Path, str, float]) -> None:
    out, output, seconds = demo_out
    assert seconds < 120
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    s = data["summary"]
    assert s["products"] == N_PRODUCTS and s["classified"] == N_PRODUCTS and s["failed"] == 0
    assert sum(s["per_class"].values()) == N_PRODUCTS and set(s["per_class"]) == {*CLASSES, OTHER}
    # Every built-in product has a ten-class category; agreement is over all of them.
    assert s["agreement"]["n"] == N_PRODUCTS and 0.3 < s["agreement"]["rate"] <= 1.0
    # The printed summary: products, per-class counts, agreement, the report's path.
    assert f"crawled {N_PRODUCTS} products" in output and "agree with the shop's categories" in output
    assert f"{100 * s['agreement']['rate']:.1f}%" in output
    assert str(out / "report.html") in output.replace("\n", "")
    for label in CLASSES:
        assert label in output
    # The shop's markup product came through the crawl as text, and is escaped in the page.
    with Catalogue.open(out, create=False) as cat:
        assert SCRIPT_NAME in {p["name"] for p in cat.products()}
        assert cat.runs()[-1]["status"] == "finished"
    html = (out / "report.html").read_text(encoding="utf-8")
    # The page's own search-and-filter script is its only one; the shop's markup is text.
    assert html.count("<script") == 1 and "&lt;script&gt;alert(1)&lt;/script&gt; Tee" in html
    assert (out / STATE_FILE).is_file() and (out / "models").is_dir()


@needs_fmnist
@pytest.mark.slow
def test_demo_rerun_reuses_what_is_stored(demo_out: tuple[Path, str, float]) -> None:
    out, _, _ = demo_out
    started = time.monotonic()
    result = run_demo(DemoConfig(out=out, n_products=N_PRODUCTS))
    assert time.monotonic() - started < 30
    assert result.reused and result.shop_url is None and result.crawl is None
    assert result.classified.classified == 0 and result.classified.reused == N_PRODUCTS
    with Catalogue.open(out, create=False) as cat:
        assert len(cat.runs()) == 1 and cat.counts()["products"] == N_PRODUCTS
    with pytest.raises(GarmentError, match="another shop"):
        run_demo(DemoConfig(out=out, n_products=N_PRODUCTS + 1))


def test_fresh_clears_only_the_demo_files(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    (out / "images" / "ab").mkdir(parents=True)
    (out / "images" / "ab" / "x.jpg").write_bytes(b"x")
    (out / "catalogue.sqlite").write_bytes(b"")
    (out / "notes.txt").write_text("mine")
    (out / STATE_FILE).write_text(json.dumps({"shop": {"products": 5, "seed": 0}}))
    assert _prepare_folder(DemoConfig(out=out, n_products=9, fresh=True)) is False
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (out / "catalogue.sqlite").write_bytes(b"")  # a catalogue the demo did not make
    with pytest.raises(GarmentError, match="did not make"):
        _prepare_folder(DemoConfig(out=out, fresh=True))
    with pytest.raises(GarmentError, match="not a folder"):
        DemoConfig(images=tmp_path / "missing").validate()


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_PHOTOS / "labels.csv").is_file(),
                    reason=f"no labelled real photos at {REAL_PHOTOS} (set GARMENT_DEV_PHOTOS)")
def test_real_photo_shop_agrees_with_evaluate(tmp_path: Path, onnx_cache: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """The shop sells the labelled photos under their categories ("other" as Accessories).
    Agreement of the image's own labels with those categories is evaluate's overall accuracy ("other"
    included) for the same photos; the top-class agreement is its in-scope accuracy."""
    result = run_demo(DemoConfig(images=REAL_PHOTOS, out=tmp_path / "real", delay=0.0,
                                 concurrency=8, classify=ClassifyConfig(cache_dir=onnx_cache)))
    n_photos = sum(1 for _ in (REAL_PHOTOS / "labels.csv").open()) - 1
    assert result.summary["products"] == n_photos and result.summary["failed"] == 0
    metrics_path = tmp_path / "eval.json"
    ev = cli("evaluate", str(REAL_PHOTOS / "labels.csv"), "--json", str(metrics_path))
    assert ev.exit_code == 0, ev.output
    metrics = json.loads(metrics_path.read_text())
    agreement = result.summary["agreement_image"]  # the image's answers; "agreement" adds the text
    assert agreement["n"] == metrics["n"] and agreement["n_in_scope"] == metrics["n_in_scope"]
    assert agreement["rate"] == pytest.approx(metrics["overall_accuracy"], abs=0.01)
    assert agreement["in_scope"] == pytest.approx(metrics["in_scope_accuracy"], abs=0.01)

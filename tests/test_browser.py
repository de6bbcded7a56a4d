"""The report in a real browser: Debian's Chromium, headless, driven by Playwright.

Screenshots go to ``artifacts/`` at the repository root (git-ignored), or to
``$GARMENT_TEST_ARTIFACTS``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from garment.classify import ClassifyConfig
from garment.demo import DemoConfig, run_demo
from garment.errors import GarmentError
from garment.shop import SCRIPT_NAME

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("GARMENT_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "artifacts"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _why_skip() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} missing (make browser, or apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install 'garment[dev]')"
    try:
        from garment.data import find_data

        find_data()
    except GarmentError:
        return "Fashion-MNIST not found (the demo shop renders its test images)"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_why_skip() is not None,
                                                   reason=_why_skip() or "")]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    onnx = tmp_path_factory.mktemp("onnx")
    result = run_demo(DemoConfig(out=tmp_path_factory.mktemp("demo"), n_products=30,
                                 classify=ClassifyConfig(cache_dir=onnx)))
    return result.report


@pytest.fixture(scope="module")
def page(report: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    """The report open in Chromium: (page, dialogs seen, console errors)."""
    from playwright.sync_api import sync_playwright

    dialogs: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 900})

            def on_dialog(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            pg.on("dialog", on_dialog)
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(report.as_uri(), wait_until="load", timeout=30_000)
            yield pg, dialogs, errors
        finally:
            browser.close()


def test_galleries_render_and_images_load(page: tuple[Any, list[str], list[str]],
                                          report: Path) -> None:
    pg, _, errors = page
    data = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    shown = sum(len(g["items"]) for g in data["galleries"])
    assert shown > 0
    sizes = pg.eval_on_selector_all(
        "#galleries .gallery img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
    assert len(sizes) == shown
    assert all(done and width > 0 for done, width in sizes), sizes
    assert pg.locator("#galleries figure").count() == shown
    assert "garment report" in pg.title()
    assert errors == []  # no blocked resource, no script error
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "report.png"))
    pg.screenshot(path=str(ARTIFACTS / "report-full.png"), full_page=True)
    shutil.copy(report, ARTIFACTS / "report.html")


def test_markup_in_a_product_name_is_text_and_runs_nothing(
        page: tuple[Any, list[str], list[str]], report: Path) -> None:
    pg, dialogs, _ = page
    assert SCRIPT_NAME in report.with_suffix(".json").read_text(encoding="utf-8")
    names = pg.locator("figcaption .name", has_text="alert(1)")
    assert names.count() >= 1
    assert names.first.inner_text().strip() == SCRIPT_NAME
    assert pg.eval_on_selector_all("script", "s => s.length") == 0
    pg.wait_for_timeout(300)  # time for anything that would fire
    assert dialogs == []

"""The report in a real browser: Debian's Chromium, headless, driven by Playwright.

Screenshots go to ``artifacts/`` at the repository root (git-ignored), or to
``$GARMENT_TEST_ARTIFACTS``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from garment.classify import ClassifyConfig
from garment.demo import DemoConfig, run_demo
from garment.shop import SCRIPT_NAME
from needs import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, browser_missing, has_fmnist


def _why_skip() -> str | None:
    if not has_fmnist():
        return browser_missing() or "Fashion-MNIST not found (the demo shop renders its test images)"
    return browser_missing()


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
    # The page's own search-and-filter script is the only one (its hash is the only one allowed).
    assert pg.eval_on_selector_all("script", "s => s.length") == 1
    pg.wait_for_timeout(300)  # time for anything that would fire
    assert dialogs == []


def test_search_and_label_filter(page: tuple[Any, list[str], list[str]], report: Path) -> None:
    pg, _, errors = page
    bar = pg.locator("#filters")
    assert bar.is_visible()  # the script unhid it
    cards = pg.locator("figure.item")
    total = cards.count()
    data = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    name = data["galleries"][0]["items"][0]["name"] if data["galleries"][0]["items"] else SCRIPT_NAME
    word = max(name.split(), key=len).lower()
    bar.locator("input").fill(word)
    visible = pg.locator("figure.item:visible")
    assert 0 < visible.count() < total
    assert all(word in n.lower() for n in visible.locator(".name").all_inner_texts())
    bar.locator("input").fill("")
    bar.locator("select").select_option("Bag")
    labels = pg.locator("figure.item:visible").evaluate_all("fs => fs.map(f => f.dataset.label)")
    assert labels and set(labels) == {"Bag"}
    assert "of " in bar.locator("output").inner_text()
    bar.locator("select").select_option("")
    assert pg.locator("figure.item:visible").count() == total
    assert errors == []


def test_category_cell_opens_its_products(page: tuple[Any, list[str], list[str]]) -> None:
    pg, _, _ = page
    link = pg.locator("#categories td a").first
    target = link.get_attribute("href")
    assert target and target.startswith("#cell-")
    assert not pg.locator(target).is_visible()  # lists stay folded until asked for
    link.click()
    assert pg.locator(target).is_visible() and pg.locator(f"{target} li").count() >= 1


def test_narrow_screen_has_no_horizontal_overflow(page: tuple[Any, list[str], list[str]], report: Path) -> None:
    """A phone-width viewport (390 px): the page itself never scrolls sideways; wide tables
    scroll inside their own box."""
    browser = page[0].context.browser
    narrow = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        narrow.goto(report.as_uri(), wait_until="load", timeout=30_000)
        width = narrow.evaluate("document.documentElement.scrollWidth")
        wide = narrow.evaluate("""() => Array.from(document.querySelectorAll('body *'))
            .filter(e => !e.closest('.scroll') && e.getBoundingClientRect().right > 390.5)
            .map(e => e.tagName + '.' + e.className).slice(0, 5)""")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        narrow.screenshot(path=str(ARTIFACTS / "report-390.png"))
        narrow.screenshot(path=str(ARTIFACTS / "report-390-full.png"), full_page=True)
    finally:
        narrow.close()
    assert width <= 390, (width, wide)
    assert wide == []

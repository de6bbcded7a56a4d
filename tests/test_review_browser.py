"""The review app in a real browser: Debian's Chromium, headless, driven by Playwright,
against the real server (uvicorn on a free loopback port).

Screenshots go to ``artifacts/`` at the repository root (git-ignored), or to
``$GARMENT_TEST_ARTIFACTS``.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from needs import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, browser_missing

TOKEN = "browser-test-token"


def _why_skip() -> str | None:
    return browser_missing()


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_why_skip() is not None, reason=_why_skip() or "")]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, Path, dict[str, int]]]:
    """(server, catalogue folder, product ids) with the review app listening."""
    from garment.review import ReviewConfig, ReviewServer
    from reviewcatalogue import build

    folder = tmp_path / "cat"
    ids = build(folder)
    server = ReviewServer(ReviewConfig(catalogue=folder, port=0, token=TOKEN)).start()
    try:
        yield server, folder, ids
    finally:
        server.stop()


@pytest.fixture
def small_pages(tmp_path: Path) -> Iterator[Any]:
    """The review app serving pages of three products."""
    from garment.review import ReviewConfig, ReviewServer
    from reviewcatalogue import build

    folder = tmp_path / "cat"
    build(folder)
    server = ReviewServer(ReviewConfig(catalogue=folder, port=0, token=TOKEN, page_size=3)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser: Any, url: str, width: int = 1280, height: int = 900) -> tuple[Any, list[str]]:
    """A page on the review app, ready; returns (page, problems seen: dialogs and script errors)."""
    problems: list[str] = []
    pg = browser.new_page(viewport={"width": width, "height": height})

    def on_dialog(dialog: Any) -> None:
        problems.append("dialog: " + dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.on("console", lambda m: problems.append("console: " + m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append("error: " + str(e)))
    pg.goto(url, wait_until="load", timeout=30_000)
    pg.wait_for_selector("body[data-ready='1']", timeout=15_000)
    return pg, problems


def _names(pg: Any) -> list[str]:
    return [t.strip() for t in pg.locator("#grid .card h2").all_inner_texts()]


def _wait_names(pg: Any, names: list[str]) -> None:
    pg.wait_for_function("n => JSON.stringify([...document.querySelectorAll('#grid .card h2')]"
                         ".map(h => h.textContent)) === JSON.stringify(n)", arg=names, timeout=10_000)


def _item(folder: Path, pid: int) -> dict[str, Any]:
    from garment.store import Catalogue

    with Catalogue.open(folder, readonly=True) as cat:
        return next(r for r in cat.products_with_labels() if r["product_id"] == pid)


def _wait_status(pg: Any, words: str) -> None:
    pg.wait_for_function("w => document.getElementById('status').textContent.includes(w)", arg=words,
                         timeout=10_000)


def test_filter_search_and_least_confident_first(browser: Any, served: tuple[Any, Path, dict[str, int]]) -> None:
    server, _, _ = served
    pg, problems = _open(browser, server.url)
    names = _names(pg)
    assert names[:3] == ["Wool coat", "Linen shirt", "Summer dress"] and names[-1] == "Lost photo"
    pg.wait_for_function("() => [...document.querySelectorAll('#grid img.view[src]')].every(i => i.complete)")
    sizes = pg.eval_on_selector_all("#grid .card img.view[src]", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(sizes) == 7 and all(w == 28 for w in sizes)  # the network's view, every packshot
    pg.select_option("select[name=source]", "text")
    _wait_names(pg, ["Summer dress"])
    assert "source=text" in pg.url  # the filter is in the address: a reload keeps it
    pg.select_option("select[name=source]", "")
    pg.fill("input[name=q]", "boot")
    _wait_names(pg, ["Ankle boots"])
    pg.fill("input[name=q]", "")
    pg.select_option("select[name=category]", "Women > Shoes")
    _wait_names(pg, ["Canvas sneakers", "Ankle boots"])
    pg.select_option("select[name=sort]", "-confidence")
    _wait_names(pg, ["Ankle boots", "Canvas sneakers"])
    pg.reload()
    pg.wait_for_selector("body[data-ready='1']")
    _wait_names(pg, ["Ankle boots", "Canvas sneakers"])
    assert pg.input_value("select[name=category]") == "Women > Shoes"
    assert problems == []


def test_correct_with_the_keyboard_and_undo(browser: Any, served: tuple[Any, Path, dict[str, int]]) -> None:
    server, folder, ids = served
    pg, problems = _open(browser, server.url)
    coat, shirt = ids["Wool coat"], ids["Linen shirt"]
    pg.keyboard.press("4")  # Dress, on the first (least confident) card
    _wait_status(pg, "Wool coat: Dress (human)")
    row = _item(folder, coat)
    assert (row["label"], row["label_source"], row["image_label"]) == ("Dress", "human", "Coat")
    assert pg.locator(".card.current h2").inner_text() == "Linen shirt"  # moved on
    pg.keyboard.press("o")
    _wait_status(pg, "Linen shirt: other (human)")
    assert _item(folder, shirt)["label"] == "other"
    pg.keyboard.press("ArrowLeft")
    pg.keyboard.press("ArrowLeft")
    assert pg.locator(".card.current h2").inner_text() == "Wool coat"
    pg.keyboard.press("0")
    _wait_status(pg, "Wool coat: Ankle boot (human)")
    pg.keyboard.press("u")  # undo: Dress again
    _wait_status(pg, "undid 1 change")
    assert _item(folder, coat)["label"] == "Dress"
    first = pg.locator("#grid .card").first
    assert first.locator(".label").inner_text() == "Dress" and first.locator(".source").inner_text() == "human"
    pg.keyboard.press("ArrowLeft")
    pg.keyboard.press("Backspace")  # back to the prediction
    _wait_status(pg, "Wool coat: back to Coat")
    assert _item(folder, coat)["label_source"] == "image"
    # One click on a class button corrects too.
    pg.locator(f".card[data-id='{shirt}'] button[data-label='Shirt']").click()
    _wait_status(pg, "Linen shirt: Shirt (human)")
    assert _item(folder, shirt)["label"] == "Shirt"
    assert problems == []


def test_accept_a_filtered_page_then_export_and_dataset_carry_it(
        browser: Any, served: tuple[Any, Path, dict[str, int]], tmp_path: Path, cli: Any) -> None:
    import pyarrow.parquet as pq

    server, folder, ids = served
    pg, problems = _open(browser, server.url + "?category=Women")
    assert len(_names(pg)) == 5 and "Tote bag" not in _names(pg)
    pg.click("#accept")
    _wait_status(pg, "accepted 5 labels")
    assert pg.locator("#grid .card .source", has_text="human").count() == 5
    pg.click("#undo")
    _wait_status(pg, "undid 5 changes")
    assert pg.locator("#grid .card .source", has_text="human").count() == 0
    pg.keyboard.press("4")  # the wool coat is a dress, says the person
    _wait_status(pg, "Wool coat: Dress (human)")
    pg.click("#accept")  # and the rest of the page is right
    _wait_status(pg, "accepted 4 labels")
    assert problems == []

    out = tmp_path / "export.csv"
    assert cli("export", "--catalogue", str(folder), "--out", str(out)).exit_code == 0
    import csv

    rows = {r["name"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert (rows["Wool coat"]["label"], rows["Wool coat"]["label_source"]) == ("Dress", "human")
    assert rows["Wool coat"]["image_label"] == "Coat" and rows["Summer dress"]["label_source"] == "human"
    assert rows["Tote bag"]["label_source"] == "image"  # not on the page

    data = tmp_path / "dataset"
    r = cli("dataset", "--catalogue", str(folder), "--out", str(data), "--format", "parquet", "--only", "human",
            "--test-fraction", "0")
    assert r.exit_code == 0, r.output
    table = pq.read_table(data / "train.parquet").to_pylist()
    by_id = {t["product_id"]: t for t in table}
    women = {ids[n] for n, r in rows.items() if r["category"].startswith("Women")}
    assert len(women) == 5 and set(by_id) == women  # the five accepted, and only those
    assert (by_id[ids["Wool coat"]]["label_name"], by_id[ids["Wool coat"]]["label_source"]) == ("Dress", "human")


def test_refused_without_the_token_or_with_a_foreign_host(
        browser: Any, served: tuple[Any, Path, dict[str, int]]) -> None:
    server, folder, ids = served
    coat = ids["Wool coat"]
    pg, _ = _open(browser, server.url)
    status = pg.evaluate("""id => fetch(`/api/products/${id}/label`, {method: "PUT",
        headers: {"Content-Type": "application/json"}, body: JSON.stringify({label: "Dress"})})
        .then(r => r.status)""", coat)
    assert status == 403
    # A page on another name for this address (DNS rebinding) is refused by the server.
    split = urlsplit(server.url)
    for method, body, headers in (("GET", None, {}), ("PUT", json.dumps({"label": "Dress"}),
                                                      {"X-Garment-Token": TOKEN, "Content-Type": "application/json"})):
        conn = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
        try:
            conn.request(method, f"/api/products/{coat}/label" if body else "/api/products", body=body,
                         headers={"Host": f"rebind.example:{split.port}", **headers})
            assert conn.getresponse().status == 400
        finally:
            conn.close()
    assert _item(folder, coat)["label_source"] == "image"


def test_markup_in_a_name_is_text_and_runs_nothing(browser: Any, served: tuple[Any, Path, dict[str, int]]) -> None:
    from reviewcatalogue import XSS_NAME

    server, _, ids = served
    pg, problems = _open(browser, server.url)
    card = pg.locator(f".card[data-id='{ids[XSS_NAME]}']")
    assert card.locator("h2").inner_text() == XSS_NAME
    assert pg.locator("#grid img[src='x']").count() == 0
    pg.wait_for_timeout(300)  # time for anything that would fire
    assert pg.title() != "pwned" and problems == []


def test_phone_width(browser: Any, served: tuple[Any, Path, dict[str, int]]) -> None:
    server, _, _ = served
    pg, problems = _open(browser, server.url, width=390, height=844)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    boxes = pg.eval_on_selector_all("#grid .card", "cs => cs.map(c => c.getBoundingClientRect().right)")
    assert boxes and max(boxes) <= 390
    pg.keyboard.press("8")
    _wait_status(pg, "Wool coat: Sneaker (human)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "review-phone.png"))
    assert problems == []


def test_next_page_after_corrections_skips_nothing(browser: Any, small_pages: Any) -> None:
    from reviewcatalogue import XSS_NAME

    pg, problems = _open(browser, small_pages.url)
    _wait_names(pg, ["Wool coat", "Linen shirt", "Summer dress"])
    for name in ("Wool coat", "Linen shirt", "Summer dress"):
        pg.keyboard.press("4")
        _wait_status(pg, f"{name}: Dress (human)")
    # Human labels (confidence 1) now sort last: the next least confident come next.
    pg.keyboard.press("]")
    _wait_names(pg, [XSS_NAME, "Canvas sneakers", "Tote bag"])
    pg.click("#next")
    _wait_names(pg, ["Ankle boots", "Linen shirt", "Summer dress"])  # then the human labels, by id
    pg.click("#prev")
    _wait_names(pg, [XSS_NAME, "Canvas sneakers", "Tote bag"])
    # Filtered by source, a corrected product leaves the filter: nothing is skipped either.
    pg.select_option("select[name=source]", "image")
    _wait_names(pg, [XSS_NAME, "Canvas sneakers", "Tote bag"])
    pg.keyboard.press("o")
    _wait_status(pg, "other (human)")
    pg.keyboard.press("]")
    _wait_names(pg, ["Canvas sneakers", "Tote bag"])
    assert problems == []

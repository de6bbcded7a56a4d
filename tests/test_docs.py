"""Docs: each file format's page in docs/ against the code that reads or writes it."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from garment.shipped import shipped_models

DOCS = Path(__file__).resolve().parent.parent / "docs"


def table_keys(page: str, heading: str | None = None) -> list[str]:
    """The first column's `names` of the first Markdown table under ``heading`` (whole page: None)."""
    text = (DOCS / page).read_text(encoding="utf-8")
    if heading is not None:
        text = text.split(f"\n{heading}\n", 1)[1]
    rows = re.search(r"^\|.*\|\n\|[-| ]+\|\n((?:\|.*\|\n?)+)", text, re.M)
    assert rows, f"no table in {page} under {heading}"
    return [re.match(r"\| `([^`]+)`", line).group(1)  # type: ignore[union-attr]
            for line in rows.group(1).strip().splitlines()]


def code_block(page: str, lang: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    match = re.search(rf"```{lang}\n(.*?)```", text, re.S)
    assert match, f"no {lang} block in {page}"
    return match.group(1)


def test_export_columns_page_lists_every_column_in_order() -> None:
    from garment.export import COLUMNS

    assert table_keys("export-columns.md") == list(COLUMNS)


def test_model_card_page_lists_every_key() -> None:
    card = json.loads((shipped_models()["default"] / "model.json").read_text())
    assert sorted(table_keys("model-card.md", "## Keys")) == sorted(card)
    for key in ("recipe", "other", "metrics"):
        assert sorted(table_keys("model-card.md", f"### `{key}`")) == sorted(card[key]), key


def test_model_card_page_matches_the_card_dataclass() -> None:
    pytest.importorskip("torch")
    from dataclasses import fields

    from garment.models import ModelCard

    assert sorted(table_keys("model-card.md", "## Keys")) == sorted(f.name for f in fields(ModelCard))


def test_site_toml_page_lists_every_key_and_its_example_loads(tmp_path: Path) -> None:
    from garment.scrape.profile import SELECTOR_KEYS, TOP_KEYS, load_profile

    assert table_keys("site-toml.md", "## Top-level keys") == list(TOP_KEYS)
    assert sorted(table_keys("site-toml.md", "## `[selectors]`")) == sorted(SELECTOR_KEYS)
    path = tmp_path / "shop.toml"
    path.write_text(code_block("site-toml.md", "toml"))
    profile = load_profile(path)
    assert sorted(profile.selectors) == sorted(SELECTOR_KEYS) and profile.image_rewrite


def test_labels_csv_page_example_is_read_by_evaluate(tmp_path: Path) -> None:
    from garment.evaluate import read_labels

    blocks = re.findall(r"```\n(.*?)```", (DOCS / "labels-csv.md").read_text(), re.S)
    example = next(b for b in blocks if b.startswith("file,"))
    (tmp_path / "labels.csv").write_text(example)
    files, labels = read_labels(tmp_path / "labels.csv")
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["images/dress/0001.jpg", "images/other/0002.jpg"]
    assert labels.tolist() == [3, -1]
    columns = next(csv.reader([example.splitlines()[0]]))
    assert set(table_keys("labels-csv.md")) == set(columns)

"""Export: one row per product in .csv, .jsonl and .parquet, labels once classified."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from garment.errors import GarmentError
from garment.export import COLUMNS, export
from garment.store import Catalogue, Prediction


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    folder = tmp_path / "cat"
    with Catalogue.open(folder) as cat:
        for n, status in ((1, "ok"), (2, "noai")):
            cat.save_product(
                {"url": f"http://shop.test/p/{n}", "canonical_url": f"http://shop.test/p/{n}",
                 "sku": f"S{n}", "name": f"Item, \"{n}\"", "price": 9.5, "currency": "EUR",
                 "category": "Women > Dresses", "image_urls": [], "extractor": "jsonld"},
                {"url": f"http://cdn.test/{n}.jpg", "status": status,
                 "path": f"images/{n}.jpg" if status == "ok" else None, "width": 200,
                 "height": 260, "sha256": "ab" * 32})
    return folder


def test_csv_before_and_after_classification(catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    assert export(catalogue, out) == 2
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    assert rows[0]["name"] == 'Item, "1"' and rows[0]["label"] == ""
    assert rows[0]["image_path"] == "images/1.jpg"  # relative to the catalogue folder
    assert rows[0]["status"] == "ok" and rows[1]["status"] == "noai"
    assert rows[0]["crawled_at"].startswith("20") and rows[0]["model_id"] == ""
    assert rows[1]["image_path"] == "" and rows[1]["sha256"] == ""  # noai: no file
    with Catalogue.open(catalogue) as cat:
        [img] = list(cat.iter_images())
        cat.record_predictions("m1", [Prediction(img.image_id, "Dress", 3, 0.875)])
    export(catalogue, out)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert (rows[0]["label"], rows[0]["label_index"], rows[0]["confidence"]) == \
        ("Dress", "3", "0.875")
    assert rows[0]["model_id"] == "m1" and rows[1]["model_id"] == ""


@pytest.fixture
def classified(catalogue: Path) -> Path:
    """The first product's packshot classified "other" by m1 (its top class a Bag)."""
    with Catalogue.open(catalogue) as cat:
        [img] = list(cat.iter_images())
        cat.record_predictions("m1", [Prediction(img.image_id, "other", -1, 0.6,
                                                 [("Bag", 0.6), ("Dress", 0.3), ("Coat", 0.05)],
                                                 score=0.12)])
    return catalogue


def test_the_model_s_own_answer_in_every_format(classified: Path, tmp_path: Path) -> None:
    export(classified, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert (row["label"], row["top_label"], row["score"], row["model_id"]) == ("other", "Bag", "0.12", "m1")
    top3 = [{"label": "Bag", "probability": 0.6}, {"label": "Dress", "probability": 0.3},
            {"label": "Coat", "probability": 0.05}]
    assert json.loads(row["top3"]) == top3  # a JSON string in CSV
    export(classified, tmp_path / "out.jsonl")
    first, second = (json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines())
    assert first["top3"] == top3 and first["score"] == 0.12 and first["top_label"] == "Bag"
    assert second["top3"] is None and second["status"] == "noai"
    pq = pytest.importorskip("pyarrow.parquet")
    export(classified, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("top3").to_pylist()[0] == top3  # a list of (label, probability)
    assert table.column("score").to_pylist()[0] == 0.12


def test_failed_classification_is_the_status(catalogue: Path, tmp_path: Path) -> None:
    with Catalogue.open(catalogue) as cat:
        [img] = list(cat.iter_images())
        cat.record_predictions("m1", [Prediction(img.image_id, None, None, None, status="error",
                                                 error="not an image")])
    [first, _] = write_rows(catalogue)
    assert first["status"] == "error" and first["label"] is None


def write_rows(catalogue: Path, fmt: str = "jsonl") -> list[dict[str, object]]:
    import io

    from garment.export import write_export

    buf = io.StringIO()
    summary = write_export(catalogue, "-", fmt=fmt, stream=buf)
    assert summary.out == "-" and summary.rows == 2 and summary.catalogue == str(catalogue)
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(buf.getvalue())))
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_out_dash_streams_csv_or_jsonl_and_refuses_parquet(classified: Path) -> None:
    assert [r["sku"] for r in write_rows(classified, "csv")] == ["S1", "S2"]
    assert write_rows(classified)[0]["top_label"] == "Bag"
    with pytest.raises(GarmentError, match="use one of csv, jsonl"):
        write_rows(classified, "parquet")


def test_cli_out_dash_and_json_summary(classified: Path, tmp_path: Path,
                                       cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("export", "--catalogue", str(classified), "--out", "-", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["sku"] for line in result.stdout.splitlines()] == ["S1", "S2"]
    result = cli("export", "--catalogue", str(classified), "--out", str(tmp_path / "o.csv"), "--json")
    summary = json.loads(result.stdout)
    assert summary == {"catalogue": str(classified), "out": str(tmp_path / "o.csv"), "format": "csv",
                       "rows": 2, "model_id": "m1"}


def test_jsonl_and_parquet(catalogue: Path, tmp_path: Path) -> None:
    export(catalogue, tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert list(rows[0]) == list(COLUMNS) and rows[0]["price"] == 9.5
    assert rows[0]["label"] is None
    pq = pytest.importorskip("pyarrow.parquet")
    export(catalogue, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == list(COLUMNS) and table.num_rows == 2


def test_bad_inputs_name_the_fix(catalogue: Path, tmp_path: Path) -> None:
    with pytest.raises(GarmentError, match=r"\.csv, \.jsonl, \.parquet"):
        export(catalogue, tmp_path / "out.xlsx")
    with pytest.raises(GarmentError, match="garment scrape"):
        export(tmp_path / "nowhere", tmp_path / "out.csv")
    with pytest.raises(GarmentError, match="no predictions by model"):
        export(catalogue, tmp_path / "out.csv", model_id="nope")


def test_cli_export(catalogue: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("export", "--catalogue", str(catalogue), "--out", str(tmp_path / "o.csv"))
    assert result.exit_code == 0 and "2 products" in result.output


FORMULAS = ['=HYPERLINK("http://evil.test","click")', "+1+2", "-2+3", "@SUM(A1:A2)",
            "\t=1+2", " =1+2", "\r=1+2", "\uff1d1+2"]


def test_csv_neutralises_formulas_jsonl_and_parquet_keep_raw_text(tmp_path: Path) -> None:
    from garment.scrape.extract import extract_product

    folder = tmp_path / "cat"
    names: list[str] = []
    with Catalogue.open(folder) as cat:
        for n, raw in enumerate(FORMULAS):
            ld = json.dumps({"@type": "Product", "name": raw, "sku": f"{raw}{n}",
                             "brand": "-Acme", "offers": {"price": -5 - n,
                                                          "priceCurrency": "EUR"}})
            html = f"<html><head><script type='application/ld+json'>{ld}</script></head></html>"
            product = extract_product(html, f"http://shop.test/p/{n}")
            assert product is not None and product.name and product.price == -5 - n
            names.append(product.name)
            cat.save_product({**product.as_dict(), "url": product.url}, None)
    assert names[4] == "=1+2"  # whitespace cleanup made a leading "=": the CSV must catch it
    export(folder, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row, name in zip(rows, names, strict=True):
        assert row["name"] == "'" + name and row["sku"].startswith("'")
        assert row["brand"] == "'-Acme"
        assert float(row["price"]) < 0 and not row["price"].startswith("'")  # a number
        assert row["product_url"].startswith("http")  # ordinary text untouched
    export(folder, tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == names
    assert json.loads(lines[0])["brand"] == "-Acme"
    pq = pytest.importorskip("pyarrow.parquet")
    export(folder, tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").column("name").to_pylist() == names

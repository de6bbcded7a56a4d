"""The commands on a PostgreSQL catalogue: scrape a local shop into it, classify, export,
report and write a dataset, and get what the same commands give on a SQLite catalogue folder."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from garment import CLASSES
from garment.store import Catalogue, target
from services import needs_postgres
from shopsite import ShopSite

pytestmark = needs_postgres

#: Columns that say when, not what.
WHEN = ("crawled_at",)


def _pipeline(cli: Callable[..., Any], catalogue: str, extra: list[str], out: Path) -> tuple[dict[str, Any], ...]:
    shop = ShopSite().start()
    try:
        result = cli("scrape", shop.url, "--out", catalogue, *extra, "--delay", "0", "--concurrency", "4")
        assert result.exit_code == 0, result.output
    finally:
        shop.stop()
    result = cli("classify", "--catalogue", catalogue, "--json")
    assert result.exit_code == 0, result.output
    classified = json.loads(result.stdout.strip().splitlines()[-1])
    result = cli("export", "--catalogue", catalogue, "--out", str(out / "products.csv"))
    assert result.exit_code == 0, result.output
    with open(out / "products.csv", newline="", encoding="utf-8") as f:
        rows = {r["product_url"].replace(shop.url, "/"): {k: v.replace(shop.url, "/").replace(shop.img, "//img")
                                                          for k, v in r.items() if k not in WHEN}
                for r in csv.DictReader(f)}
    result = cli("report", "--catalogue", catalogue, "--out", str(out / "report.html"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    with Catalogue.open(target(catalogue), create=False) as cat:  # a person labels every product
        cat.set_human_labels({p["id"]: CLASSES[int(m[1]) % 10] for p in cat.products()
                              if (m := re.search(r"/p/(\d+)", p["url"]))})
    result = cli("dataset", "--catalogue", catalogue, "--out", str(out / "ds"), "--format", "imagefolder")
    assert result.exit_code == 0, result.output
    report["dataset"] = sorted(p.relative_to(out / "ds").as_posix().split("/", 1)[1]  # class/sha.ext
                               for p in (out / "ds").rglob("*.jpg"))
    return classified, rows, report


def test_scrape_classify_export_report_on_postgres_as_on_sqlite(
        cli: Callable[..., Any], postgres_url: str, tmp_path: Path) -> None:
    files = tmp_path / "shared"
    result = cli("scrape", "http://127.0.0.1:9/", "--out", postgres_url)
    assert result.exit_code == 2 and "--images" in result.output  # a PostgreSQL catalogue needs its folder
    pg = _pipeline(cli, postgres_url, ["--images", str(files)], tmp_path / "pg")
    lite = _pipeline(cli, str(tmp_path / "catalogue"), [], tmp_path / "lite")
    (pg_classified, pg_rows, pg_report), (lite_classified, lite_rows, lite_report) = pg, lite
    for key in ("model_id", "images", "classified", "failed", "labels", "final_labels", "sources"):
        assert pg_classified[key] == lite_classified[key], key
    assert pg_classified["catalogue"] == postgres_url
    assert pg_rows == lite_rows and len(pg_rows) >= 20
    assert pg_report["dataset"] and pg_report["dataset"] == lite_report["dataset"]  # the same examples
    for key in ("products", "classified", "failed", "model_id", "to_review", "image_text_agreement"):
        assert pg_report.get(key) == lite_report.get(key), key
    assert (tmp_path / "pg" / "report.html").stat().st_size > 0
    # The images went to the shared folder under the same hash names as in the folder catalogue.
    assert sorted(p.name for p in (files / "images").rglob("*.*")) == \
        sorted(p.name for p in (tmp_path / "catalogue" / "images").rglob("*.*"))
    with Catalogue.open(postgres_url, create=False, readonly=True) as cat:  # its files folder recorded
        assert cat.folder == files.resolve() and len(cat.products()) == len(pg_rows)

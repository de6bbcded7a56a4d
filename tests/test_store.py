"""The catalogue on both backends (SQLite, PostgreSQL): migrations, upserts, resume bookkeeping,
predictions, labels, claims; then SQLite's read-only catalogues."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogues import Targets, integrity_errors
from garment.errors import GarmentError
from garment.store import MIGRATIONS, Catalogue, Prediction


def product(n: int, **kw: object) -> dict[str, object]:
    return {"url": f"http://shop.test/p/{n}", "canonical_url": f"http://shop.test/p/{n}",
            "sku": f"S{n}", "name": f"Item {n}", "price": 9.5, "currency": "EUR",
            "image_urls": [f"http://cdn.test/{n}.jpg"], "extractor": "jsonld",
            "sources": {"name": "jsonld"}, **kw}


def image(n: int, status: str = "ok") -> dict[str, object]:
    return {"url": f"http://cdn.test/{n}.jpg", "status": status, "path": f"images/{n}.jpg",
            "width": 200, "height": 260, "format": "jpeg", "sha256": f"{n:064d}", "bytes": 10}


@pytest.fixture
def fresh(targets: Targets) -> str | Path:
    """A new catalogue target of the backend under test."""
    return targets()


def test_migrations_recorded_and_safe_to_rerun(fresh: str | Path, tmp_path: Path) -> None:
    with Catalogue.open(fresh) as cat:
        assert cat.migrations() == [m[0] for m in MIGRATIONS]
        assert cat.migrate() == []
        if isinstance(fresh, Path):
            assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Catalogue.open(fresh) as cat:  # reopening applies nothing new
        assert cat.migrations() == [m[0] for m in MIGRATIONS]
    with pytest.raises(GarmentError, match="garment scrape"):
        Catalogue.open(tmp_path / "missing", create=False)


def test_upsert_by_canonical_url_then_sku(fresh: str | Path) -> None:
    with Catalogue.open(fresh) as cat:
        run = cat.start_run({"start_urls": ["http://shop.test/"]})
        pid, iid = cat.save_product(product(1), image(1), run)
        again, iid2 = cat.save_product(product(1, price=7.0), image(1), run)
        assert (again, iid2) == (pid, iid)
        alt = product(1, url="http://shop.test/p/1/alt", canonical_url="http://shop.test/x",
                      price=8.0)
        assert cat.save_product(alt, image(1), run)[0] == pid  # same sku, same site
        other_site = product(1, url="http://b.test/p/1", canonical_url="http://b.test/p/1")
        assert cat.save_product(other_site, None, run)[0] != pid
        rows = cat.products()
        assert len(rows) == 2 and rows[0]["price"] == 8.0  # last write wins
        assert rows[0]["canonical_url"] == "http://shop.test/p/1"
        assert len(cat.images()) == 1


def test_page_declaring_its_canonical_url_names_the_product(targets: Targets) -> None:
    """Two pages of one sku, one declaring rel=canonical: the catalogue keeps its URLs whichever
    the crawl reached first."""
    declared = product(1, sources={"name": "jsonld", "canonical_url": "link"})
    alt = product(1, url="http://shop.test/p/1/alt", canonical_url="http://shop.test/p/1/alt")
    for order in ((alt, declared), (declared, alt)):
        with Catalogue.open(targets()) as cat:
            run = cat.start_run({})
            pids = {cat.save_product(p, image(1), run)[0] for p in order}
            rows = cat.products()
            assert len(pids) == 1 and len(rows) == 1
            assert (rows[0]["url"], rows[0]["canonical_url"]) == ("http://shop.test/p/1", "http://shop.test/p/1")
            assert rows[0]["sources"]["canonical_url"] == "link"


def test_done_urls_and_runs(fresh: str | Path) -> None:
    with Catalogue.open(fresh) as cat:
        r1 = cat.start_run({})
        cat.save_product(product(1), image(1), r1)
        cat.save_product(product(2), image(2, "failed"), r1)
        cat.save_product(product(3), image(3, "noai"), r1)
        cat.record_error(r1, "http://shop.test/p/9", "page", "http_500", 500, "oops")
        assert cat.done_urls() == {"http://shop.test/p/1", "http://shop.test/p/3"}
        r2 = cat.start_run({})  # r1 never finished: a killed crawl
        cat.finish_run(r2, {"pages": 3})
        assert [r["status"] for r in cat.runs()] == ["interrupted", "finished"]
        assert cat.counts()["errors"] == {"http_500": 1}
        assert [i.image_id for i in cat.iter_images()] == [1]


def test_a_shared_crawl_leaves_the_other_workers_runs_running(fresh: str | Path) -> None:
    with Catalogue.open(fresh) as cat:
        first = cat.start_run({"out": "postgresql://u:secret@db/c?images=%2Fx"}, shared=True)
        assert cat.runs()[0]["config"] == '{"out": "postgresql://u:***@db/c"}'
        second = cat.start_run({}, shared=True)
        cat.finish_run(second, {})
        assert [(r["id"], r["status"]) for r in cat.runs()] == [(first, "running"), (second, "finished")]
        cat.start_run({})  # a crawl of its own: what is left running was killed
        assert [r["status"] for r in cat.runs()] == ["interrupted", "finished", "running"]


def test_predictions_latest_model_and_named_model(fresh: str | Path) -> None:
    with Catalogue.open(fresh) as cat:
        cat.save_product(product(1), image(1))
        cat.save_product(product(2), image(2, "too_small"))
        [img] = list(cat.iter_images())
        assert img.path == cat.folder / "images/1.jpg"
        assert cat.products_with_labels()[0]["label"] is None
        cat.record_predictions("a", [Prediction(img.image_id, "Dress", 3, 0.9,
                                                [("Dress", 0.9), ("Coat", 0.05)])])
        cat.record_predictions("b", [Prediction(img.image_id, "Coat", 4, 0.6)])
        cat.record_predictions("b", [Prediction(img.image_id, "Coat", 4, 0.7)])  # replaces
        assert cat.models() == ["a", "b"]
        latest = cat.products_with_labels()
        assert (latest[0]["label"], latest[0]["confidence"]) == ("Coat", 0.7)
        assert latest[1]["label"] is None
        named = cat.products_with_labels("a")[0]
        assert named["top3"] == [["Dress", 0.9], ["Coat", 0.05]]
        assert cat.predicted("a") == cat.predicted("b") == {img.image_id}
        assert cat.products_with_labels(product_ids=[]) == []


def test_foreign_keys_enforced(fresh: str | Path) -> None:
    with Catalogue.open(fresh) as cat, pytest.raises(integrity_errors()):
        cat.record_predictions("a", [Prediction(999, "Dress", 3, 0.9)])


def test_labels_settings_and_claims(fresh: str | Path) -> None:
    with Catalogue.open(fresh) as cat:
        for n in (1, 2, 3):
            cat.save_product(product(n), image(n))
        cat.set_setting("k", "v")
        cat.set_setting("k", "w")
        assert cat.get_setting("k") == "w"
        cat.set_human_labels({1: "Dress", 2: "other"})
        cat.clear_human_label(2)
        assert {k: v["label"] for k, v in cat.human_labels().items()} == {1: "Dress"}
        assert cat.undo_human_label() == [2]
        assert {k: v["label"] for k, v in cat.human_labels().items()} == {1: "Dress", 2: "other"}
        cat.record_text_labels("v1", [(1, {"label": "Dress", "label_index": 3, "confidence": 0.8})])
        cat.record_text_labels("v1", [(1, {"label": "Coat", "label_index": 4, "confidence": 0.7})])
        assert cat.text_labels()[1]["label"] == "Coat"
        cat.replace_labels("m", [{"product_id": 1, "label": "Coat", "label_index": 4,
                                  "confidence": 0.7, "label_source": "text"}])
        assert cat.products_with_labels("m")[0]["predicted_label"] == "Coat"
        # Claims: two owners never share an image; an owner is not handed back what it failed on.
        a = [i.image_id for i in cat.claim_images("m", "A", limit=2)]
        b = [i.image_id for i in cat.claim_images("m", "B", limit=2)]
        assert a == [1, 2] and b == [3]
        cat.record_predictions("m", [Prediction(1, "Coat", 4, 0.9), Prediction(2, None, None, None, status="error")])
        assert cat.claim_images("m", "A") == []
        cat.release_claims("m", "A")
        assert [i.image_id for i in cat.claim_images("m", "C")] == [2]  # the failed one, for another run
        assert [i.image_id for i in cat.claim_images("m2", "A", ttl_s=-1.0)] == [1, 2, 3]
        assert [i.image_id for i in cat.claim_images("m2", "B")] == [1, 2, 3]  # A's claims expired


# -- read-only catalogues ----------------------------------------------------------------------

#: Run as a user who cannot write: root keeps its identity but loses the capabilities that
#: bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so mode bits apply.
AS_READER = """
import ctypes, os, sys
if os.geteuid() == 0:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()
    assert libc.capget(ctypes.byref(header), data) == 0
    data[0].effective &= ~0b110
    data[0].permitted &= ~0b110
    assert libc.capset(ctypes.byref(header), data) == 0
from garment.cli import main
main(sys.argv[1:])
"""


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def _writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _garment_as_reader(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", AS_READER, *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def read_only_catalogue(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "catalogue"
    with Catalogue.open(folder) as cat:
        run = cat.start_run({})
        for n in (1, 2):
            cat.save_product(product(n), image(n), run)
        cat.finish_run(run, {"products": 2})
    _read_only(folder)
    probe = subprocess.run([sys.executable, "-c", AS_READER.replace(
        "from garment.cli import main\nmain(sys.argv[1:])",
        f"open({str(folder / 'probe')!r}, 'w')")], capture_output=True, text=True, timeout=60)
    if probe.returncode == 0:
        _writable(folder)
        pytest.skip("this process cannot be denied writes (no capset here)")
    yield folder
    _writable(folder)


def test_readonly_open_reads_and_never_writes(tmp_path: Path) -> None:
    with Catalogue.open(tmp_path) as cat:
        cat.save_product(product(1), image(1), cat.start_run({}))
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with Catalogue.open(tmp_path, create=False, readonly=True) as cat:
        assert [p["sku"] for p in cat.products()] == ["S1"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            cat.record_error(None, "http://shop.test/", "page", "x", None, None)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.name in before} == before
    with pytest.raises(GarmentError, match="garment scrape"):
        Catalogue.open(tmp_path / "missing", readonly=True)
    assert not (tmp_path / "missing").exists()


def test_readonly_open_of_an_old_catalogue_migrates_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import garment.store

    with monkeypatch.context() as older:  # a catalogue written before the last migration
        older.setattr(garment.store, "MIGRATIONS", MIGRATIONS[:-1])
        Catalogue.open(tmp_path).close()
    with Catalogue.open(tmp_path, create=False, readonly=True) as cat:
        versions = {r[0] for r in cat.conn.execute("SELECT version FROM schema_migrations")}
    assert versions == {m[0] for m in MIGRATIONS}


def test_export_and_report_work_on_a_read_only_catalogue(
        read_only_catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _garment_as_reader("export", "--catalogue", str(read_only_catalogue), "--out",
                                str(out / "products.csv"))
    assert result.returncode == 0, result.stderr
    assert len((out / "products.csv").read_text().splitlines()) == 3
    result = _garment_as_reader("report", "--catalogue", str(read_only_catalogue))
    assert result.returncode == 1  # a runtime failure
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write") and "--out" in lines[0]
    result = _garment_as_reader("report", "--catalogue", str(read_only_catalogue), "--out",
                                str(out / "report.html"))
    assert result.returncode == 0, result.stderr
    assert (out / "report.html").stat().st_size > 0 and (out / "report.json").exists()
    assert sorted(p.name for p in read_only_catalogue.iterdir()) == ["catalogue.sqlite"]

"""The catalogue in PostgreSQL: what only a server shared by many processes needs (concurrent
writers and migrations, classify processes splitting the images, clear errors). The
interface itself is tested on both backends in test_store.py."""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from garment.errors import GarmentError
from garment.store import Catalogue, target
from services import free_port, needs_postgres
from test_store import image, product

pytestmark = needs_postgres


def _together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` for i < n in n threads released at once; their results in order."""
    start = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        start.wait(timeout=30)
        try:
            results[i] = work(i)
        except BaseException as exc:  # the test reads it below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
    return results


def test_new_catalogue_records_its_images_folder(postgres_url: str, tmp_path: Path) -> None:
    with pytest.raises(GarmentError, match="--images DIR"):
        Catalogue.open(postgres_url)
    with pytest.raises(GarmentError, match="garment scrape"):
        Catalogue.open(postgres_url, create=False)
    files = tmp_path / "files"
    with Catalogue.open(target(postgres_url, files)) as cat:
        assert cat.folder == files.resolve() and files.is_dir()
        assert cat.name == postgres_url
    with Catalogue.open(postgres_url, create=False, readonly=True) as cat:  # recorded: no --images
        assert cat.folder == files.resolve()
        with pytest.raises(Exception, match="read-only"):
            cat.record_error(None, "http://shop.test/", "page", "x")
    with Catalogue.open(postgres_url, images=tmp_path / "elsewhere") as cat:  # --images overrides
        assert cat.folder == tmp_path / "elsewhere"


def test_unreachable_server_and_missing_psycopg_are_one_line(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql://garment:s3cret@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(GarmentError) as caught:
        Catalogue.open(url)
    message = str(caught.value)
    assert "s3cret" not in message and "127.0.0.1" in message and "check the server runs" in message
    assert "\n" not in message
    real = builtins.__import__

    def no_psycopg(name: str, *args: Any, **kw: Any) -> Any:
        if name == "psycopg":
            raise ImportError("No module named 'psycopg'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(GarmentError, match=r"pip install 'garment\[scale\]'"):
        Catalogue.open(postgres_url)


def test_processes_opening_a_new_catalogue_at_once_migrate_it_once(postgres_url: str, tmp_path: Path) -> None:
    url = target(postgres_url, tmp_path / "files")

    def open_it(_: int) -> list[int]:
        with Catalogue.open(url) as cat:
            return cat.migrations()

    versions = _together(6, open_it)
    assert all(v == versions[0] for v in versions) and len(versions[0]) >= 7


def test_concurrent_writers_store_each_product_once(postgres_url: str, tmp_path: Path) -> None:
    """Eight writers save the same 60 products, under their URL or another URL of the same sku,
    in different orders: each product is stored exactly once, with one packshot row."""
    url = target(postgres_url, tmp_path / "files")
    Catalogue.open(url).close()
    n = 60

    def write(w: int) -> int:
        with Catalogue.open(url) as cat:
            run = cat.start_run({}, shared=True)
            order = range(n) if w % 2 else reversed(range(n))
            for i in order:
                p = product(i) if w % 3 else product(i, url=f"http://shop.test/p/{i}?w={w}",
                                                      canonical_url=f"http://shop.test/p/{i}/alt")
                cat.save_product(p, image(i), run)
            cat.finish_run(run, {})
            return cat.statements

    _together(8, write)
    with Catalogue.open(url) as cat:
        rows = cat.products()
        assert Counter(r["sku"] for r in rows) == Counter({f"S{i}": 1 for i in range(n)})
        assert len(cat.images()) == n
        assert [r["status"] for r in cat.runs()] == ["finished"] * 8  # no worker interrupted another


def test_classify_processes_split_the_images_without_overlap(
        postgres_url: str, tmp_path: Path, tiny_model: Path, make_photo: Callable[..., Path]) -> None:
    """Two `garment classify --catalogue URL` processes at once: every image is answered once
    (each process claims batches of 256 the other does not hold)."""
    url = target(postgres_url, tmp_path / "files")
    n = 600
    with Catalogue.open(url) as cat:
        for i in range(n):
            make_photo(cat.folder / f"images/{i}.jpg", i, (28, 36))
            cat.save_product(product(i), image(i))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # the model's ONNX export
    command = [sys.executable, "-m", "garment", "classify", "--catalogue", postgres_url, "--model", str(tiny_model),
               "--workers", "1", "--no-text", "--json"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["classified"] for r in results) == n  # every image once: none twice, none left
    assert all(r["failed"] == 0 for r in results)
    with Catalogue.open(url) as cat:
        assert len(cat.predicted(results[0]["model_id"])) == n
        assert cat.claim_images(results[0]["model_id"], "another") == []  # nothing left, no claim kept
    from garment.classify import ClassifyConfig
    from garment.classify.catalogue import classify_catalogue

    config = ClassifyConfig(model_dir=tiny_model, cache_dir=tmp_path / "cache" / "garment", workers=1)
    assert classify_catalogue(url, config=config, text=False).classified == 0  # all answered
    forced = classify_catalogue(url, config=config, text=False, force=True)  # all again, this process
    assert (forced.classified, forced.failed, forced.model_id) == (n, 0, results[0]["model_id"])


def test_round_trips_per_saved_product(postgres_url: str, tmp_path: Path) -> None:
    """What one stored product costs: statements, and network round trips as libpq's trace
    of the messages sent shows them (one each: every statement waits for its answer)."""
    from garment.store.postgres import traced_round_trips

    with Catalogue.open(target(postgres_url, tmp_path / "files")) as cat:
        run = cat.start_run({})
        statements = cat.statements
        with traced_round_trips(cat) as new:
            assert cat.save_product(product(1), image(1), run) == (1, 1)
        with traced_round_trips(cat) as again:
            assert cat.save_product(product(1, price=3.0), image(1), run) == (1, 1)
        with traced_round_trips(cat) as bare:
            assert cat.save_product(product(2), None, run) == (2, None)
        # BEGIN, the product's locks, its look-up, insert or update, the packshot, COMMIT.
        assert cat.statements - statements == 6 + 6 + 5
        assert cat.products()[0]["price"] == 3.0
    assert (new[0], again[0], bare[0]) == (6, 6, 5)


def test_review_app_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    """The review app on a PostgreSQL catalogue: rows, packshots and the 28x28 view from the
    files folder, a correction stored, and a change another process commits seen."""
    from fastapi.testclient import TestClient

    from garment.review import ReviewConfig, create_app
    from reviewcatalogue import build

    ids = build(target(postgres_url, tmp_path / "files"))
    app = create_app(ReviewConfig(catalogue=postgres_url, token="t"))
    with TestClient(app, base_url="http://127.0.0.1:8642", headers={"X-Garment-Token": "t"}) as client:
        body = client.get("/api/products").json()
        assert body["total"] == 8
        coat = ids["Wool coat"]
        assert client.get(f"/images/{coat}.jpg").status_code == 200
        assert client.get(f"/api/products/{coat}/view.png").headers["content-type"] == "image/png"
        assert client.put(f"/api/products/{coat}/label", json={"label": "Bag"}).status_code == 200
        with Catalogue.open(postgres_url) as other:  # another process labels a product
            assert other.human_labels()[coat]["label"] == "Bag"
            other.set_human_label(ids["Tote bag"], "Trouser")
        tote = client.get(f"/api/products/{ids['Tote bag']}").json()
        assert (tote["label"], tote["label_source"]) == ("Trouser", "human")

"""The review app: human labels in the catalogue, and its JSON API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from garment.errors import GarmentError
from garment.store import Catalogue, Prediction


def _product(n: int, **kw: object) -> dict[str, object]:
    return {"url": f"http://shop.test/p/{n}", "canonical_url": f"http://shop.test/p/{n}",
            "sku": f"S{n}", "name": f"Item {n}", "price": 9.5, "currency": "EUR",
            "image_urls": [f"http://cdn.test/{n}.jpg"], "extractor": "jsonld",
            "sources": {"name": "jsonld"}, **kw}


def _image(n: int) -> dict[str, object]:
    return {"url": f"http://cdn.test/{n}.jpg", "status": "ok", "path": f"images/{n}.jpg",
            "width": 60, "height": 80, "format": "jpeg", "sha256": f"{n:064d}", "bytes": 10}


def test_human_label_wins_and_undo_restores(tmp_path: Path) -> None:
    with Catalogue.open(tmp_path) as cat:
        for n in (1, 2, 3):
            cat.save_product(_product(n), _image(n))
        imgs = list(cat.iter_images())
        cat.record_predictions("m", [Prediction(i.image_id, "Coat", 4, 0.6) for i in imgs])
        p1, p2, p3 = (i.product_id for i in imgs)

        cat.set_human_label(p1, "Dress")
        row = {r["product_id"]: r for r in cat.products_with_labels()}
        assert (row[p1]["label"], row[p1]["label_index"], row[p1]["confidence"],
                row[p1]["label_source"]) == ("Dress", 3, 1.0, "human")
        # The machine's answer is kept beside the person's, never overwritten.
        assert (row[p1]["image_label"], row[p1]["predicted_label"], row[p1]["predicted_confidence"]) == \
            ("Coat", "Coat", 0.6)
        assert row[p2]["label_source"] == "image"
        assert [r[0] for r in cat.conn.execute("SELECT label FROM predictions")] == ["Coat"] * 3

        cat.set_human_label(p1, "other")
        assert cat.human_labels()[p1]["label_index"] == -1
        cat.clear_human_label(p1)
        assert cat.products_with_labels()[0]["label"] == "Coat"
        assert cat.undo_human_label() == [p1]  # undoing the clear brings "other" back
        assert cat.products_with_labels()[0]["label"] == "other"
        assert cat.undo_human_label(p1) == [p1]
        assert cat.products_with_labels()[0]["label"] == "Dress"

        # A page accepted at once is one batch: one undo takes it all back.
        assert cat.set_human_labels({p2: "Coat", p3: "Bag"}) == 2
        assert set(cat.human_labels()) == {p1, p2, p3}
        assert cat.undo_human_label() == [p2, p3]
        assert set(cat.human_labels()) == {p1}
        assert cat.undo_human_label() == [p1]
        assert cat.undo_human_label() == []
        assert cat.human_labels() == {}
        history = cat.human_label_history()
        assert len(history) == 5 and all(h["undone"] for h in history) and all(h["created"] for h in history)

        with pytest.raises(GarmentError, match="unknown label 'Jumper'"):
            cat.set_human_label(p1, "Jumper")
        with pytest.raises(GarmentError, match="no product with id 999"):
            cat.set_human_label(999, "Dress")


def test_human_label_without_any_prediction(tmp_path: Path) -> None:
    with Catalogue.open(tmp_path) as cat:
        cat.save_product(_product(1), _image(1))
        [img] = list(cat.iter_images())
        cat.set_human_label(img.product_id, "Sneaker")
        [row] = cat.products_with_labels()
        assert (row["label"], row["label_source"], row["predicted_label"]) == ("Sneaker", "human", None)


# --- the JSON API ------------------------------------------------------------------------

TOKEN = "test-token"


@pytest.fixture
def catalogue(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    from reviewcatalogue import build

    folder = tmp_path / "cat"
    return folder, build(folder)


@pytest.fixture
def client(catalogue: tuple[Path, dict[str, int]]) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from garment.review import ReviewConfig, create_app

    app = create_app(ReviewConfig(catalogue=catalogue[0], token=TOKEN))
    with TestClient(app, base_url="http://127.0.0.1:8642", headers={"X-Garment-Token": TOKEN}) as c:
        yield c


def test_list_sorts_least_confident_first_and_filters(client: Any, catalogue: tuple[Path, dict[str, int]]) -> None:
    ids = catalogue[1]
    r = client.get("/api/products")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 8  # seven classified and one without a packshot
    confs = [it["confidence"] for it in body["items"]]
    assert confs[:7] == sorted(confs[:7]) and confs[0] == 0.35 and confs[-1] is None
    first = body["items"][0]
    assert {"id", "name", "label", "label_index", "confidence", "label_source", "image_url",
            "view_url"} <= set(first)
    assert first["image_url"] == "/images/7.jpg"

    def names(**params: object) -> list[str]:
        return [it["name"] for it in client.get("/api/products", params=params).json()["items"]]

    assert names(sort="-confidence")[:2] == ["Ankle boots", "Tote bag"]
    assert names(label="Dress") == ["Summer dress", catalogue_xss_name()]
    assert names(source="text") == ["Summer dress"]
    assert names(source="agree") == ["Ankle boots"]
    assert names(source="none") == ["Lost photo"]
    assert names(conflict="true") == ["Summer dress"]
    assert names(category="Women > Shoes") == ["Canvas sneakers", "Ankle boots"]
    assert set(names(category="Women")) == {"Summer dress", "Canvas sneakers", "Ankle boots", "Wool coat",
                                             catalogue_xss_name()}
    assert names(q="SHOES") == [] and names(q="ankle BOOT") == ["Ankle boots"]
    assert names(min_conf="0.5", max_conf="0.9") == ["Summer dress", catalogue_xss_name(), "Canvas sneakers"]
    # An empty parameter is no filter, as a form sends it.
    assert len(names(label="", source="", q="", min_conf="", max_conf="")) == 8
    page = client.get("/api/products", params={"limit": 3, "offset": 3}).json()
    assert page["total"] == 8 and len(page["items"]) == 3
    assert ids["Linen shirt"] == client.get("/api/products", params={"limit": 2}).json()["items"][1]["id"]


def catalogue_xss_name() -> str:
    from reviewcatalogue import XSS_NAME

    return XSS_NAME


def test_bad_query_parameters_name_the_fix(client: Any) -> None:
    for params, words in (({"label": "Jumper"}, "label 'Jumper' unknown"), ({"source": "x"}, "source 'x' unknown"),
                          ({"sort": "price"}, "sort 'price' unknown"), ({"min_conf": "high"}, "not a number"),
                          ({"conflict": "maybe"}, "use true or false"), ({"limit": 0}, "limit must be")):
        r = client.get("/api/products", params=params)
        assert r.status_code == 400 and words in r.json()["detail"], (params, r.text)


def test_correct_undo_and_accept_page(client: Any, catalogue: tuple[Path, dict[str, int]]) -> None:
    folder, ids = catalogue
    shirt = ids["Linen shirt"]
    r = client.put(f"/api/products/{shirt}/label", json={"label": "T-shirt/top"})
    assert r.status_code == 200
    it = r.json()
    assert (it["label"], it["label_index"], it["confidence"], it["label_source"]) == ("T-shirt/top", 0, 1.0, "human")
    assert (it["predicted_label"], it["predicted_confidence"]) == ("Shirt", 0.41) and it["human_created"]
    assert client.put(f"/api/products/{shirt}/label", json={"label": "other"}).json()["label_index"] == -1
    assert client.get("/api/products", params={"source": "human"}).json()["total"] == 1

    back = client.delete(f"/api/products/{shirt}/label").json()
    assert (back["label"], back["label_source"]) == ("Shirt", "image")
    undone = client.post("/api/undo").json()
    assert undone["undone"] == [shirt] and undone["items"][0]["label"] == "other"

    # Accept the filtered page: every shown label becomes a human one, as one batch.
    page = client.get("/api/products", params={"category": "Women"}).json()["items"]
    r = client.post("/api/accept", json={"ids": [p["id"] for p in page]})
    assert r.status_code == 200 and r.json()["accepted"] == 5
    assert all(it["label_source"] == "human" for it in r.json()["items"])
    summer = next(it for it in r.json()["items"] if it["name"] == "Summer dress")
    assert summer["label"] == "Dress"  # the label shown (text won) is the one accepted
    assert sorted(client.post("/api/undo").json()["undone"]) == sorted(p["id"] for p in page)
    assert client.get("/api/products", params={"source": "human"}).json()["total"] == 1  # the shirt's "other"

    # Export reads the catalogue's human labels.
    from garment.export import export_rows

    with Catalogue.open(folder, readonly=True) as cat:
        rows = {r["product_url"]: r for r in export_rows(cat)}
    assert (rows["http://shop.test/p/1"]["label"], rows["http://shop.test/p/1"]["label_source"]) == ("other", "human")
    assert rows["http://shop.test/p/1"]["image_label"] == "Shirt"

    assert client.put(f"/api/products/{shirt}/label", json={"label": "Jumper"}).status_code == 400
    assert client.put("/api/products/999/label", json={"label": "Dress"}).status_code == 404
    assert client.post("/api/accept", json={"ids": [999]}).status_code == 404
    assert client.put(f"/api/products/{shirt}/label", json={}).status_code == 422


def test_state_changes_need_the_token_and_a_local_host(client: Any, catalogue: tuple[Path, dict[str, int]]) -> None:
    shirt = catalogue[1]["Linen shirt"]
    url = f"/api/products/{shirt}/label"
    for headers in ({"X-Garment-Token": ""}, {"X-Garment-Token": "wrong"}):
        r = client.put(url, json={"label": "Dress"}, headers=headers)
        assert r.status_code == 403 and "X-Garment-Token" in r.json()["detail"]
    assert client.post("/api/undo", headers={"X-Garment-Token": "nope"}).status_code == 403
    assert client.delete(url, headers={"X-Garment-Token": "nope"}).status_code == 403
    assert client.get(f"/api/products/{shirt}").json()["label_source"] == "image"  # nothing changed
    # DNS rebinding: a foreign name pointing at 127.0.0.1 is refused, reads included.
    for method in ("get", "put"):
        r = getattr(client, method)(url if method == "put" else "/api/products", headers={"Host": "evil.example"},
                                    **({"json": {"label": "Dress"}} if method == "put" else {}))
        assert r.status_code == 400
    assert client.get("/api/products", headers={"Host": "localhost:8642"}).status_code == 200
    assert client.get(f"/api/products/{shirt}").json()["label_source"] == "image"


def test_page_escapes_text_and_serves_the_token(client: Any) -> None:
    r = client.get("/")
    assert r.status_code == 200 and f'content="{TOKEN}"' in r.text
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "<script>" not in r.text  # no inline script: the policy allows none
    for path in ("/static/review.js", "/static/review.css"):
        assert client.get(path).status_code == 200


def test_images_only_from_the_images_folder(client: Any, catalogue: tuple[Path, dict[str, int]]) -> None:
    folder, ids = catalogue
    (folder / "secret.txt").write_text("not an image")
    assert client.get("/images/1.jpg").headers["content-type"] == "image/jpeg"
    for path in ("/images/../secret.txt", "/images/%2e%2e/secret.txt", "/images/..%2fsecret.txt",
                 "/images/%2e%2e/catalogue.sqlite"):
        r = client.get(path)
        assert r.status_code == 404 and b"not an image" not in r.content, path
    # A link planted in the folder does not lead out of it.
    (folder / "images" / "link.jpg").symlink_to(folder / "secret.txt")
    assert client.get("/images/link.jpg").status_code == 404


def test_view_is_the_28x28_image_the_network_saw(client: Any, catalogue: tuple[Path, dict[str, int]]) -> None:
    import io

    import numpy as np
    from PIL import Image

    from garment.convert import convert

    folder, ids = catalogue
    item = client.get(f"/api/products/{ids['Tote bag']}").json()
    r = client.get(item["view_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (28, 28) and img.mode == "L"
    assert np.array_equal(np.asarray(img), convert(folder / "images/6.jpg"))
    assert client.get(f"/api/products/{ids['failed']}/view.png").status_code == 404
    assert client.get(f"/api/products/{ids['failed']}").json()["view_url"] is None


def test_facets(client: Any) -> None:
    f = client.get("/api/facets").json()
    assert f["total"] == 8 and f["conflicts"] == 1 and f["human"] == 0
    assert {"value": "Women > Shoes", "n": 2} in f["categories"] and {"value": "Women", "n": 5} in f["categories"]
    assert {"value": "agree", "n": 1} in f["sources"] and {"value": "none", "n": 1} in f["sources"]


def test_config_errors_are_one_line(tmp_path: Path, catalogue: tuple[Path, dict[str, int]]) -> None:
    from garment.review import ReviewConfig, ReviewServer, create_app

    with pytest.raises(GarmentError, match="no catalogue in"):
        create_app(ReviewConfig(catalogue=tmp_path / "nothing"))
    with pytest.raises(GarmentError, match="no predictions by model 'nope'"):
        create_app(ReviewConfig(catalogue=catalogue[0], model="nope"))
    server = ReviewServer(ReviewConfig(catalogue=catalogue[0], port=0))
    try:
        with pytest.raises(GarmentError, match="pass another --port"):
            ReviewServer(ReviewConfig(catalogue=catalogue[0], port=server.port))
    finally:
        server.sock.close()


def test_cli_help(cli: Any) -> None:
    r = cli("review", "--help")
    assert r.exit_code == 0 and "--catalogue" in r.output and "--port" in r.output


def test_cli_serves_until_ctrl_c(catalogue: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import sys
    import urllib.request

    missing = subprocess.run([sys.executable, "-m", "garment", "review", "--catalogue", str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and missing.stderr.startswith("error: no catalogue in")
    assert len(missing.stderr.strip().splitlines()) == 1

    proc = subprocess.Popen([sys.executable, "-m", "garment", "review", "--catalogue", str(catalogue[0]),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split("open ")[1].strip()
        token = proc.stdout.readline().rsplit(": ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and len(token) >= 32
        with urllib.request.urlopen(url + "api/products?limit=1", timeout=10) as r:  # the CLI's own server
            assert json.load(r)["total"] == 8
        req = urllib.request.Request(url + "api/undo", method="POST", headers={"X-Garment-Token": token})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.load(r) == {"undone": [], "items": []}
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130 and "Traceback" not in err, err  # 130: stopped by Ctrl-C, as scrape
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_changes_by_another_process_are_seen(client: Any, catalogue: tuple[Path, dict[str, int]]) -> None:
    folder, ids = catalogue
    bag = ids["Tote bag"]
    assert client.get(f"/api/products/{bag}").json()["label_source"] == "image"  # now cached
    with Catalogue.open(folder) as cat:  # e.g. a script, or a second review window
        cat.set_human_label(bag, "other")
    assert client.get(f"/api/products/{bag}").json()["label"] == "other"
    assert client.get("/api/products", params={"source": "human"}).json()["total"] == 1
    client.put(f"/api/products/{ids['Wool coat']}/label", json={"label": "Dress"})
    with Catalogue.open(folder) as cat:
        cat.undo_human_label(bag)
    assert client.get(f"/api/products/{bag}").json()["label"] == "Bag"
    assert client.get(f"/api/products/{ids['Wool coat']}").json()["label"] == "Dress"

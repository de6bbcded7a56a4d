"""The review app: human labels in the catalogue, and its JSON API."""

from __future__ import annotations

from pathlib import Path

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

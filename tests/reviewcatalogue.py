"""A small classified catalogue for the review app's tests: packshots on disk, image
answers at known confidences, text labels (one agreeing, one in conflict), a failed
download and a product whose name is an HTML injection attempt."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from garment import CLASSES
from garment.store import Catalogue, Prediction

MODEL = "tiny-0123456789"
XSS_NAME = '<img src=x onerror="document.title=\'pwned\'">Dress & "co"'

#: name, shop category, image label, image confidence, text label (None: no text label)
PRODUCTS = [
    ("Linen shirt", "Men > Shirts", "Shirt", 0.41, None),
    ("Ankle boots", "Women > Shoes", "Ankle boot", 0.97, "Ankle boot"),
    ("Summer dress", "Women > Dresses", "Coat", 0.55, "Dress"),  # image and text disagree
    ("Canvas sneakers", "Women > Shoes", "Sneaker", 0.88, None),
    (XSS_NAME, "Women > Dresses", "Dress", 0.62, None),
    ("Tote bag", "Bags", "Bag", 0.93, None),
    ("Wool coat", "Women > Coats", "Coat", 0.35, None),
]


def _photo(path: Path, n: int) -> None:
    img = Image.new("RGB", (60, 80), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([8 + n, 10, 50 - n, 70 - 2 * n], fill=(30 + 20 * n, 30, 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=90)


def build(folder: Path | str) -> dict[str, int]:
    """Write the catalogue into ``folder`` (or a catalogue URL); returns product name -> id (plus "failed")."""
    ids: dict[str, int] = {}
    with Catalogue.open(folder) as cat:
        preds, texts, labels = [], [], []
        for n, (name, category, label, conf, text) in enumerate(PRODUCTS, start=1):
            _photo(cat.folder / f"images/{n}.jpg", n)
            pid, image_id = cat.save_product(
                {"url": f"http://shop.test/p/{n}", "canonical_url": f"http://shop.test/p/{n}",
                 "sku": f"S{n}", "name": name, "category": category, "extractor": "jsonld",
                 "image_urls": [f"http://cdn.test/{n}.jpg"], "sources": {}},
                {"url": f"http://cdn.test/{n}.jpg", "status": "ok", "path": f"images/{n}.jpg",
                 "width": 60, "height": 80, "format": "jpeg", "sha256": f"{n:064x}", "bytes": 10}, None)
            ids[name] = pid
            assert image_id is not None
            preds.append(Prediction(image_id, label, CLASSES.index(label), conf, [(label, conf)]))
            if text is not None:
                texts.append((pid, {"label": text, "label_index": CLASSES.index(text), "confidence": 0.9,
                                    "field": "category", "evidence": f"category: {text.lower()}"}))
                agree = text == label
                labels.append({"product_id": pid, "label": text, "label_index": CLASSES.index(text),
                               "confidence": 0.99 if agree else 0.6, "label_source": "agree" if agree else "text",
                               "conflict": not agree})
            else:
                labels.append({"product_id": pid, "label": label, "label_index": CLASSES.index(label),
                               "confidence": conf, "label_source": "image", "conflict": False})
        ids["failed"], _ = cat.save_product(
            {"url": "http://shop.test/p/99", "canonical_url": "http://shop.test/p/99", "sku": "S99",
             "name": "Lost photo", "category": "Bags", "extractor": "jsonld", "image_urls": [], "sources": {}},
            {"url": "http://cdn.test/99.jpg", "status": "failed", "error": "HTTP 500"}, None)
        cat.record_predictions(MODEL, preds)
        cat.record_text_labels("test", texts)
        cat.record_labels(MODEL, labels)
    return ids

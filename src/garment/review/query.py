"""Review: which products a review page shows (filters, search, sort, paging) and what it
shows of each, as plain functions over ``Catalogue.products_with_labels`` rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from garment import CLASSES, OTHER
from garment.errors import GarmentError

#: Label sources a filter may name; "none" is a product without any label yet.
SOURCES = ("image", "text", "agree", "human", "none")
SORTS = ("confidence", "-confidence", "id", "name")
LABELS = (*CLASSES, OTHER)
#: Prefix under which the app serves the catalogue's images folder.
IMAGES_PREFIX = "/images/"
MAX_LIMIT = 500


@dataclass(frozen=True)
class ProductQuery:
    """A filtered, sorted page of products; None means "any"."""

    label: str | None = None  # a class name, "other", or "none" (unlabelled)
    source: str | None = None  # one of SOURCES
    category: str | None = None  # the shop's category path, or a prefix of it ("Women > Shoes")
    q: str | None = None  # words that must all be in the name (or sku, brand), any case
    min_conf: float | None = None
    max_conf: float | None = None
    conflict: bool | None = None  # image and text named different labels
    sort: str = "confidence"  # least confident first; "-confidence" most confident first
    limit: int = 48
    offset: int = 0

    def __post_init__(self) -> None:
        if self.label is not None and self.label not in (*LABELS, "none"):
            raise GarmentError(f"label {self.label!r} unknown: use one of {', '.join(LABELS)} or 'none'")
        if self.source is not None and self.source not in SOURCES:
            raise GarmentError(f"source {self.source!r} unknown: use one of {', '.join(SOURCES)}")
        if self.sort not in SORTS:
            raise GarmentError(f"sort {self.sort!r} unknown: use one of {', '.join(SORTS)}")
        if not 1 <= self.limit <= MAX_LIMIT or self.offset < 0:
            raise GarmentError(f"limit must be 1-{MAX_LIMIT} and offset 0 or more (got {self.limit}, {self.offset})")

    def matches(self, row: dict[str, Any]) -> bool:
        """Whether a ``products_with_labels`` row passes every filter."""
        label, conf = row.get("label"), row.get("confidence")
        if self.label is not None and (label or "none") != self.label:
            return False
        if self.source is not None and (row.get("label_source") or "none") != self.source:
            return False
        if self.category is not None:
            cat = row.get("category") or ""
            if cat != self.category and not cat.startswith(self.category + " > "):
                return False
        if self.q:
            hay = " ".join(str(row.get(k) or "") for k in ("name", "sku", "brand")).casefold()
            if not all(word in hay for word in self.q.casefold().split()):
                return False
        if self.min_conf is not None and (conf is None or conf < self.min_conf):
            return False
        if self.max_conf is not None and (conf is None or conf > self.max_conf):
            return False
        return self.conflict is None or bool(row.get("conflict")) == self.conflict

    def run(self, rows: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """(how many rows match, this page of them in order)."""
        hits = [r for r in rows if self.matches(r)]
        if self.sort == "name":
            hits.sort(key=lambda r: ((r.get("name") or "").casefold(), r["product_id"]))
        elif self.sort == "id":
            hits.sort(key=lambda r: r["product_id"])
        else:
            sign = -1.0 if self.sort.startswith("-") else 1.0
            # Unlabelled products (no packshot, failed conversion) have nothing to correct: last.
            hits.sort(key=lambda r: (r.get("confidence") is None, sign * (r.get("confidence") or 0.0),
                                     r["product_id"]))
        return len(hits), hits[self.offset:self.offset + self.limit]


def image_url(row: dict[str, Any]) -> str | None:
    """Where the app serves a row's packshot, or None when it has no stored file."""
    path = row.get("image_path") or ""
    if row.get("image_status") != "ok" or not path.startswith("images/"):
        return None
    return IMAGES_PREFIX + path[len("images/"):]


ITEM_FIELDS = ("name", "sku", "brand", "category", "product_url", "label", "label_index", "confidence",
               "label_source", "conflict", "predicted_label", "predicted_label_index", "predicted_confidence",
               "predicted_label_source", "image_label", "image_confidence", "text_label", "text_evidence",
               "human_created", "top3", "model_id")


def item(row: dict[str, Any]) -> dict[str, Any]:
    """The API's view of one product."""
    out: dict[str, Any] = {"id": row["product_id"], **{k: row.get(k) for k in ITEM_FIELDS}}
    out["image_url"] = image_url(row)
    has_view = out["image_url"] is not None and row.get("image_label") is not None
    out["view_url"] = f"/api/products/{row['product_id']}/view.png" if out["image_url"] else None
    out["classified"] = has_view
    return out


def facets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the filters can choose from, with counts: labels, sources, shop categories."""
    return {
        "labels": [{"value": lab, "n": n} for lab, n in _counts(rows, "label", LABELS)],
        "sources": [{"value": s, "n": n} for s, n in _counts(rows, "label_source", SOURCES)],
        "categories": [{"value": c, "n": n} for c, n in sorted(_category_counts(rows).items())],
        "total": len(rows),
        "human": sum(r.get("label_source") == "human" for r in rows),
        "conflicts": sum(bool(r.get("conflict")) for r in rows),
    }


def _counts(rows: list[dict[str, Any]], key: str, order: tuple[str, ...]) -> list[tuple[str, int]]:
    c = Counter(r.get(key) or "none" for r in rows)
    return [(v, c[v]) for v in order if c[v]]


def _category_counts(rows: list[dict[str, Any]]) -> Counter[str]:
    """Products per shop category and per each of its parents ("Women" counts "Women > Shoes")."""
    c: Counter[str] = Counter()
    for r in rows:
        parts = [p.strip() for p in (r.get("category") or "").split(" > ")]
        for depth in range(1, len(parts) + 1):
            if parts[depth - 1]:
                c[" > ".join(parts[:depth])] += 1
    return c

"""Report: the labels in figures. The image's answer against the product's text (figures, a
review list, a card), agreement with the shop's own categories, and the review aids (the
in-scope score's histogram, the category table with each cell's products).

Reads ``Catalogue.products_with_labels`` rows: ``image_label`` is the model's own answer,
``text_label`` what the product's words say, ``label``/``label_source``/``conflict`` the
final (fused) label. A catalogue classified without text (or before fusion existed) has no
``labels`` rows (``conflict`` is None on every row): its final labels are the image's, and
the figures say so (``fused`` False) instead of failing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from garment import CLASSES, OTHER, label_index
from garment.shop import category_label

SOURCES = ("image", "text", "agree", "human")
#: What each final label source means (the badges' tooltips).
SOURCE_HELP = {"human": "a person chose this label (garment review); it wins over the machine's",
               "image": "the packshot decided (no text evidence, or the image was surer)",
               "text": "the product's words decided (no usable packshot, or the text was surer)",
               "agree": "the packshot and the product's words named the same label"}
_ORDER = {c: i for i, c in enumerate((*CLASSES, OTHER))}


def _both(r: dict[str, Any]) -> bool:
    return r.get("image_label") is not None and r.get("text_label") is not None


def disagrees(r: dict[str, Any]) -> bool:
    """Image and text name different labels: the two answers differ, or fusion flagged a
    conflict (fusion reads the image's probabilities, so it can see "other" where the
    image's thresholded label names a class)."""
    return _both(r) and (r["image_label"] != r["text_label"] or bool(r.get("conflict")))


def image_text_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by final label source, conflicts, text coverage, image-text agreement, the
    image x text confusion table (labels present only) and the final labels text changed."""
    labelled = [r for r in rows if r.get("label") is not None]
    fused = any(r.get("conflict") is not None for r in rows)
    sources = Counter(str(r.get("label_source")) for r in labelled)
    both = [r for r in rows if _both(r)]
    agree = sum(r["image_label"] == r["text_label"] for r in both)
    changed = [r for r in labelled if r.get("image_label") is not None and r["label"] != r["image_label"]
               and r.get("label_source") != "human"]
    human = [r for r in labelled if r.get("label_source") == "human"]
    return {
        "fused": fused,  # False: classified without text; final labels are the image's
        "products": len(rows),
        "labelled": len(labelled),
        "by_source": {s: sources.get(s, 0) for s in SOURCES},
        "conflicts": sum(bool(r.get("conflict")) for r in rows),
        "disagree": sum(disagrees(r) for r in both),
        "text_labelled": sum(r.get("text_label") is not None for r in rows),
        "text_other": sum(r.get("text_label") == OTHER for r in rows),
        # Final labels that came from the text alone: no image answer (no usable packshot).
        "text_only": sum(r.get("image_label") is None for r in labelled if r.get("label_source") == "text"),
        "both": len(both),
        "agree": agree,
        "agreement_rate": agree / len(both) if both else None,
        "changed_by_text": len(changed),  # a person's corrections aside
        "human": len(human),
        # A person's label that differs from the machine's final one (``predicted_label``).
        "corrected": sum(r.get("predicted_label") not in (None, r["label"]) for r in human),
        "changed": dict(Counter(f"{r['image_label']} -> {r['label']}" for r in changed).most_common()),
        "confusion": confusion(both),
    }


def confusion(both: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Image label (rows) x text label (columns) over ``both``; the labels present in
    either, in class order, on both axes (so agreement is the diagonal). None if empty."""
    if not both:
        return None
    labels = sorted({r["image_label"] for r in both} | {r["text_label"] for r in both},
                    key=lambda c: _ORDER.get(c, len(_ORDER)))
    counts = Counter((r["image_label"], r["text_label"]) for r in both)
    return {"labels": labels,
            "counts": [[counts.get((i, t), 0) for t in labels] for i in labels]}


def to_review(rows: list[dict[str, Any]], cap: int) -> tuple[list[dict[str, Any]], int]:
    """The products whose image and text disagree, least confident final label first, at
    most ``cap`` of them; and how many there are in all."""
    todo = sorted((r for r in rows if disagrees(r) and r.get("label") is not None),
                  key=lambda r: (float(r.get("confidence") or 0.0), r["product_id"]))
    return todo[:cap], len(todo)


@dataclass
class Agreement:
    """Predicted labels against the shop's own categories.

    Counted over classified products whose category maps to a Fashion-MNIST class or to
    -1 (the shop's non-garment categories: accessories, jewellery, ...). A product agrees
    when its label is the category's class, or "other" for a -1 category; so "other" on a
    T-shirt disagrees. ``in_scope``: the top class over the ten, ten-class rows only (the
    label when it is one of the ten, else the image's top class). Over the image model's
    own answers these are evaluate's ``overall_accuracy`` and ``in_scope_accuracy`` for the
    same photos; over the final labels they include what the text added.
    """

    n: int = 0
    agree: int = 0
    n_in_scope: int = 0
    agree_in_scope: int = 0

    @property
    def rate(self) -> float | None:
        return self.agree / self.n if self.n else None

    @property
    def in_scope(self) -> float | None:
        return self.agree_in_scope / self.n_in_scope if self.n_in_scope else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": self.rate, "in_scope": self.in_scope}


def leaf_category(breadcrumb: str | None) -> str | None:
    """The last item of a stored breadcrumb ('Women > Coats' -> 'Coats')."""
    if not breadcrumb:
        return None
    return breadcrumb.split(" > ")[-1].strip() or None


def shop_agreement(rows: list[dict[str, Any]], image: bool = False) -> Agreement:
    """Agreement of ``products_with_labels`` rows with their shop categories: of the final
    labels, or with ``image`` of the image model's own answers (evaluate's figures, text aside)."""
    result = Agreement()
    for r in rows:
        expected = category_label(leaf_category(r.get("category")) or "")
        predicted = label_index(r.get("image_label" if image else "label"))
        if expected is None or predicted is None:
            continue
        result.n += 1
        result.agree += predicted == expected
        if expected >= 0:
            result.n_in_scope += 1
            top = guess({"label": r.get("image_label"), "top3": r.get("top3")}) if image else guess(r)
            result.agree_in_scope += label_index(top) == expected
    return result


def guess(row: dict[str, Any]) -> str:
    """The top class: the final label when it is one of the ten, else the image's top class."""
    if row.get("label") in CLASSES:
        return str(row["label"])
    top3 = row.get("top3") or []
    return str(top3[0][0]) if top3 else str(row.get("label") or "")


def card_value(value: Any, key: str = "", nested: bool = False) -> str:
    """One value of a model card, readable: shares as percentages where the key says
    accuracy or rate, other floats to 4 significant digits, dicts as 'k v, k v' and lists
    joined ('(...)' and '[...]' around those inside another)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "none"
    if isinstance(value, float):
        if 0.0 <= value <= 1.0 and any(w in key.lower() for w in ("accuracy", "rate", "share")):
            return f"{100 * value:.1f}%"
        return f"{value:.4g}"
    if isinstance(value, dict):
        text = ", ".join(f"{k} {card_value(v, f'{key}.{k}', True)}" for k, v in value.items())
        return f"({text})" if nested else text or "none"
    if isinstance(value, list | tuple):
        text = ", ".join(card_value(v, key, True) for v in value)
        return f"[{text}]" if nested else text or "none"
    return str(value)


# --- review aids: the in-scope score's histogram, the category table's cells ---------------

def score_histogram(scores: list[float], threshold: float | None, bins: int = 30) -> dict[str, Any] | None:
    """Counts of the in-scope score in ``bins`` equal bins over the scores' range (and the
    threshold's), each marked ``other`` when it lies below the threshold; None without scores."""
    if not scores:
        return None
    lo = min(scores) if threshold is None else min(*scores, threshold)
    hi = max(scores) if threshold is None else max(*scores, threshold)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / bins
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int((s - lo) / width))] += 1
    return {"lo": lo, "hi": hi, "threshold": threshold, "n": len(scores), "peak": max(counts),
            "below": None if threshold is None else sum(s < threshold for s in scores),
            "bins": [{"lo": lo + i * width, "hi": lo + (i + 1) * width, "n": n,
                      "other": threshold is not None and lo + (i + 0.5) * width < threshold}
                     for i, n in enumerate(counts)]}


def category_table(rows: list[dict[str, Any]], cap: int = 30) -> dict[str, Any] | None:
    """Shop category x final label counts, and each non-empty cell's products (at most ``cap``,
    least confident first) for the cell's link; None when no product has a category."""
    columns = [*CLASSES, OTHER]
    table: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        cat = leaf_category(r.get("category"))
        if cat is None or r.get("label") is None:
            continue
        table.setdefault(cat, {}).setdefault(r["label"], []).append(r)
    if not table:
        return None
    out: list[dict[str, Any]] = []
    for cat, cells in table.items():
        expected = category_label(cat)
        name = None if expected is None else OTHER if expected < 0 else CLASSES[expected]
        n = sum(len(v) for v in cells.values())
        out.append({"category": cat, "expected": name, "n": n,
                    "counts": [len(cells.get(c, [])) for c in columns],
                    "products": [_cell(cells.get(c, []), cap) for c in columns],
                    "agree": None if name is None else len(cells.get(name, [])) / n})
    order = {c: i for i, c in enumerate(columns)}
    out.sort(key=lambda row: (order.get(row["expected"], len(order)), row["category"]))
    return {"columns": columns, "rows": out}


def _cell(rows: list[dict[str, Any]], cap: int) -> list[dict[str, Any]]:
    ranked = sorted(rows, key=lambda r: (float(r.get("confidence") or 0.0), r["product_id"]))
    return [{"product_id": r["product_id"], "name": r.get("name") or "(no name)",
             "confidence": float(r.get("confidence") or 0.0), "label_source": r.get("label_source")}
            for r in ranked[:cap]]

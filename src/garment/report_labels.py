"""Report: the image's answer against the product's text, as figures, a review list and a card.

Reads ``Catalogue.products_with_labels`` rows: ``image_label`` is the model's own answer,
``text_label`` what the product's words say, ``label``/``label_source``/``conflict`` the
final (fused) label. A catalogue classified without text (or before fusion existed) has no
``labels`` rows (``conflict`` is None on every row): its final labels are the image's, and
the figures say so (``fused`` False) instead of failing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from garment import CLASSES, OTHER

SOURCES = ("image", "text", "agree")
#: What each final label source means (the badges' tooltips).
SOURCE_HELP = {"image": "the packshot decided (no text evidence, or the image was surer)",
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
    changed = [r for r in labelled if r.get("image_label") is not None and r["label"] != r["image_label"]]
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
        "changed_by_text": len(changed),
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

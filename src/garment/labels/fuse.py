"""Fuse: an image prediction and the product's text evidence -> the final label and its source.

Both are read as evidence about one of eleven outcomes (the ten classes and "other") and
combined by Bayes' rule:

- the image gives a distribution: the in-scope probability ``sigmoid((score - threshold) /
  other_scale)`` (one half exactly at the model's own "other" threshold) times its class
  probabilities (sharpened or softened by the temperature ``adapt`` calibrated on the shop's
  held-out products), and the rest for "other";
- a text label with confidence ``c`` is a likelihood: ``c`` for the class it names and
  ``(1 - c) / 10`` for each of the other ten outcomes (the text is wrong, and then not towards
  any outcome in particular);
- the final label is the outcome of highest posterior, its confidence that posterior.

So a confident text label wins unless the image is far surer of something else, an image with
no text evidence keeps its own answer, and "other" from text (watches, belts, heels) counts.
``label_source`` says what decided: "agree" (image and text name the same label), "text" or
"image" (the one that won; ``conflict`` is set when the other named something else).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from garment import CLASSES, OTHER, OTHER_INDEX

#: Width of the sigmoid that turns the in-scope score into a probability (score units).
OTHER_SCALE = 0.5
#: Upper bound on a text label's trust: no word is certain (a shop may mislabel).
MAX_TEXT_CONFIDENCE = 0.98


@dataclass(frozen=True)
class Fusion:
    """How to read an image model's outputs, from its card (``other`` and ``extra["fusion"]``)."""

    threshold: float
    temperature: float = 1.0  # probabilities ** (1 / T), renormalised
    other_scale: float = OTHER_SCALE

    @classmethod
    def from_card(cls, card: Any, threshold: float | None = None) -> Fusion:
        """From a ModelCard or its JSON dict; ``threshold`` overrides the card's."""
        other = card.get("other", {}) if isinstance(card, dict) else card.other
        extra = card.get("extra", {}) if isinstance(card, dict) else card.extra
        fusion = (extra or {}).get("fusion", {})
        thr = float(threshold if threshold is not None else other.get("threshold", 0.0))
        return cls(thr, float(fusion.get("temperature", 1.0)), float(fusion.get("other_scale", OTHER_SCALE)))


@dataclass(frozen=True)
class FusedLabel:
    label: str | None
    label_index: int | None
    confidence: float | None
    label_source: str  # image, text or agree
    conflict: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "label_index": self.label_index, "confidence": self.confidence,
                "label_source": self.label_source, "conflict": self.conflict}


def _outcome(index: int) -> tuple[str, int]:
    """(label, label_index) of outcome ``index`` of the eleven (10 is "other")."""
    return (OTHER, OTHER_INDEX) if index == len(CLASSES) else (CLASSES[index], index)


def _outcome_of(label_index: int) -> int:
    return len(CLASSES) if label_index == OTHER_INDEX else label_index


def image_distribution(probs: np.ndarray, score: float, fusion: Fusion) -> np.ndarray:
    """The image's belief over the eleven outcomes (ten classes, then "other")."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-9, 1.0)
    if fusion.temperature != 1.0:
        p = p ** (1.0 / fusion.temperature)
    p = p / p.sum()
    z = (score - fusion.threshold) / fusion.other_scale
    p_in = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
    return np.append(p * p_in, 1.0 - p_in)


def fuse(probs: np.ndarray | None, score: float | None, text_index: int | None, text_confidence: float | None,
         fusion: Fusion) -> FusedLabel:
    """The final label of one product from its image answer (``probs``/``score``; None when the
    packshot could not be classified) and its text label (index -1..9 or None, confidence)."""
    has_text = text_index is not None and (text_confidence or 0.0) > 0.0
    if probs is None or score is None:
        if not has_text:
            return FusedLabel(None, None, None, "image")
        label, index = _outcome(_outcome_of(int(text_index)))  # type: ignore[arg-type]
        return FusedLabel(label, index, round(float(text_confidence or 0.0), 4), "text")
    prior = image_distribution(probs, score, fusion)
    image_best = int(prior.argmax())
    if not has_text:
        label, index = _outcome(image_best)
        return FusedLabel(label, index, round(float(prior[image_best]), 4), "image")
    c = min(float(text_confidence or 0.0), MAX_TEXT_CONFIDENCE)
    said = _outcome_of(int(text_index))  # type: ignore[arg-type]
    likelihood = np.full(len(prior), (1.0 - c) / (len(prior) - 1))
    likelihood[said] = c
    post = prior * likelihood
    post /= post.sum()
    best = int(post.argmax())
    label, index = _outcome(best)
    if image_best == said:
        return FusedLabel(label, index, round(float(post[best]), 4), "agree")
    return FusedLabel(label, index, round(float(post[best]), 4), "text" if best == said else "image", conflict=True)

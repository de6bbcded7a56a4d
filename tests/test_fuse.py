"""Fusion of image answers and text labels (garment.labels.fuse)."""

from __future__ import annotations

import numpy as np
import pytest

from garment import CLASSES, OTHER, OTHER_INDEX
from garment.labels.fuse import Fusion, fuse, image_distribution

DRESS, SHIRT, SANDAL = CLASSES.index("Dress"), CLASSES.index("Shirt"), CLASSES.index("Sandal")
FUSION = Fusion(threshold=2.0)


def _probs(best: int, p: float) -> np.ndarray:
    out = np.full(len(CLASSES), (1 - p) / (len(CLASSES) - 1))
    out[best] = p
    return out


def test_image_distribution_sums_to_one_and_is_half_other_at_the_threshold() -> None:
    d = image_distribution(_probs(DRESS, 0.7), 2.0, FUSION)
    assert d.shape == (11,) and d.sum() == pytest.approx(1.0)
    assert d[-1] == pytest.approx(0.5)
    assert image_distribution(_probs(DRESS, 0.7), 6.0, FUSION)[-1] < 0.001
    assert image_distribution(_probs(DRESS, 0.7), -2.0, FUSION)[-1] > 0.999


def test_temperature_softens_the_image_answer() -> None:
    sharp = image_distribution(_probs(DRESS, 0.7), 9.0, FUSION)
    soft = image_distribution(_probs(DRESS, 0.7), 9.0, Fusion(2.0, temperature=3.0))
    assert soft[DRESS] < sharp[DRESS] and int(soft.argmax()) == DRESS


def test_no_text_keeps_the_image_answer() -> None:
    f = fuse(_probs(SHIRT, 0.6), 5.0, None, None, FUSION)
    assert (f.label, f.label_index, f.label_source, f.conflict) == ("Shirt", SHIRT, "image", False)
    low = fuse(_probs(SHIRT, 0.6), 0.0, None, None, FUSION)  # below the threshold: other
    assert (low.label, low.label_index) == (OTHER, OTHER_INDEX)


def test_agreement_raises_confidence() -> None:
    alone = fuse(_probs(DRESS, 0.6), 5.0, None, None, FUSION)
    both = fuse(_probs(DRESS, 0.6), 5.0, DRESS, 0.9, FUSION)
    assert both.label_source == "agree" and not both.conflict
    assert both.confidence is not None and alone.confidence is not None and both.confidence > alone.confidence


def test_confident_text_wins_a_conflict_with_an_unsure_image() -> None:
    f = fuse(_probs(SHIRT, 0.55), 5.0, DRESS, 0.9, FUSION)
    assert (f.label, f.label_source, f.conflict) == ("Dress", "text", True)


def test_a_very_sure_image_wins_over_weak_text() -> None:
    f = fuse(_probs(SANDAL, 0.999), 8.0, DRESS, 0.5, FUSION)
    assert (f.label, f.label_source, f.conflict) == ("Sandal", "image", True)


def test_other_from_text_counts() -> None:
    # A watch the image reads as a bag with little certainty: the text's "other" wins.
    f = fuse(_probs(CLASSES.index("Bag"), 0.5), 2.5, OTHER_INDEX, 0.9, FUSION)
    assert (f.label, f.label_index, f.label_source) == (OTHER, OTHER_INDEX, "text")


def test_text_alone_when_the_packshot_failed() -> None:
    f = fuse(None, None, DRESS, 0.9, FUSION)
    assert (f.label, f.label_source, f.confidence) == ("Dress", "text", 0.9)
    none = fuse(None, None, None, None, FUSION)
    assert none.label is None


def test_fusion_reads_the_card() -> None:
    card = {"other": {"threshold": 1.5}, "extra": {"fusion": {"temperature": 2.0}}}
    f = Fusion.from_card(card)
    assert (f.threshold, f.temperature) == (1.5, 2.0)
    assert Fusion.from_card(card, threshold=0.5).threshold == 0.5
    assert Fusion.from_card({"other": {}}).temperature == 1.0

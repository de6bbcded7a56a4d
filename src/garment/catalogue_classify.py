"""Compatibility name of ``garment.classify.catalogue`` (a catalogue's packshots through a model)."""

from garment.classify.catalogue import *  # noqa: F403
from garment.classify.catalogue import FLUSH_EVERY, MODEL_SETTING, MODELS_DIR  # noqa: F401

"""Shipped models: the model folders inside the package, by name (``default``)."""

from __future__ import annotations

from pathlib import Path

#: Package data: one folder per shipped model (model.safetensors + model.json).
WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_models() -> dict[str, Path]:
    """Name -> folder of every model shipped in the package."""
    if not WEIGHTS_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(WEIGHTS_DIR.iterdir()) if (p / "model.json").is_file()}

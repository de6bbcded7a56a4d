"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# --- classify / evaluate fixtures --------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small, untrained "default" model folder with a known "other" rule (msp, 0.5)."""
    import torch

    from garment.models import ModelCard, create_model, save_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-model")
    model = create_model("default")
    card = ModelCard("default", recipe={},
                     other={"score": "msp", "threshold": 0.5, "tta": ["identity"]})
    return save_model(folder, model, card)


@pytest.fixture
def onnx_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep ONNX exports out of the user's cache."""
    import garment.classify.engine

    cache = tmp_path / "onnx-cache"
    monkeypatch.setattr(garment.classify.engine, "CACHE_DIR", cache)
    return cache


@pytest.fixture
def make_photo() -> Callable[..., Path]:
    """``make_photo(path, kind)`` writes a product-like JPEG: a dark shape on white."""
    return _make_photo


def _make_photo(path: Path, kind: int, size: tuple[int, int] = (60, 80)) -> Path:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    w, h = size
    shapes = [
        lambda: d.rectangle([w * 0.2, h * 0.1, w * 0.8, h * 0.9], fill=(40, 40, 40)),
        lambda: d.ellipse([w * 0.1, h * 0.3, w * 0.9, h * 0.7], fill=(90, 20, 20)),
        lambda: d.polygon([(w * 0.5, h * 0.1), (w * 0.9, h * 0.9), (w * 0.1, h * 0.9)],
                          fill=(10, 10, 80)),
        lambda: d.rectangle([w * 0.1, h * 0.6, w * 0.9, h * 0.8], fill=(0, 0, 0)),
    ]
    shapes[kind % len(shapes)]()
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=90)
    return path


# --- end classify / evaluate fixtures ----------------------------------------------------


# --- foundation fixtures: tiny Fashion-MNIST, CLI runner ----------------------------------


@pytest.fixture(scope="session")
def tiny_fmnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of four tiny IDX files (gzipped) in Fashion-MNIST's layout.

    Each class is a distinct, learnable pattern (a bar at a class-specific row) plus noise,
    so a network can overfit it; 40 train and 20 test images per class.
    """
    import numpy as np

    from garment.data import write_idx

    folder = tmp_path_factory.mktemp("fmnist")
    rng = np.random.default_rng(0)

    def make(n_per_class: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(np.arange(10), n_per_class)
        images = rng.integers(0, 40, (len(labels), 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c : 5 + 2 * c, 4:24] = 255
        perm = rng.permutation(len(labels))
        return images[perm].astype(np.uint8), labels[perm].astype(np.uint8)

    for prefix, n in (("train", 40), ("t10k", 20)):
        images, labels = make(n)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture
def cli() -> Callable[..., object]:
    """``cli("train", "--help")`` runs the garment command in-process and returns the result."""
    from typer.testing import CliRunner

    from garment.cli import app

    runner = CliRunner()

    def run(*args: str) -> object:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run


# --- end foundation fixtures ---------------------------------------------------------------


# --- real servers for the scale-out tests (tests/services.py) --------------------------------

from catalogues import targets  # noqa: E402,F401  (a catalogue of each backend)
from services import postgres_server, postgres_url, redis_server, redis_url  # noqa: E402,F401

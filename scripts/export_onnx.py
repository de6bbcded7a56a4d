"""Write a model folder's own ONNX export (``model.onnx`` + its sidecar), so classifying with it
needs neither PyTorch nor a cache; ``make model`` and ``make onnx`` run it on the shipped model.

    python scripts/export_onnx.py [MODEL_DIR ...]   # default: src/garment/weights/default

An export that already matches the folder's weights and card is kept; a stale one is redone.
Needs PyTorch (``pip install 'garment[train]'``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from garment.classify.engine import DEFAULT_MODEL_DIR, write_model_onnx
from garment.errors import GarmentError


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", type=Path, nargs="*", default=[DEFAULT_MODEL_DIR], help="model folders")
    args = ap.parse_args()
    try:
        for folder in args.models:
            path = write_model_onnx(folder)
            print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")
    except GarmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

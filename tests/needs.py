"""Skip markers for tests that need data or programs a fresh machine may lack."""

from __future__ import annotations

import pytest

from garment.data import find_data
from garment.errors import GarmentError


def has_fmnist() -> bool:
    """Whether Fashion-MNIST is where garment looks for it."""
    try:
        find_data()
    except GarmentError:
        return False
    return True


needs_fmnist = pytest.mark.skipif(
    not has_fmnist(), reason="Fashion-MNIST not found (the built-in shop renders its test "
                             "images; `make data` installs it)")

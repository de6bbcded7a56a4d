"""Skip markers for tests that need data or programs a fresh machine may lack."""

from __future__ import annotations

import os
from pathlib import Path

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


#: Debian's Chromium, driven by Playwright in the browser tests (``make browser`` installs it).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Where browser tests leave their screenshots and pages.
ARTIFACTS = Path(os.environ.get("GARMENT_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} missing (make browser, or apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install 'garment[dev]')"
    return None

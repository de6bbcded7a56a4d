"""Scrape, packshot checks: downloaded bytes -> verdict and file, pure and offline-testable.

The original bytes are kept; the file name is the SHA-256 of the bytes (never anything
from the URL) with the extension of the format Pillow reads, so identical images are
stored once.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOAI = re.compile(r"\bno(image)?ai\b", re.I)
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
              "TIFF": "tif", "AVIF": "avif"}

#: Statuses after which the next candidate image of a product is tried.
TRY_NEXT = frozenset({"too_small", "not_image", "corrupt", "http_error"})


@dataclass
class ImageCheck:
    """The verdict on one download: ``status`` 'ok' or why not."""

    status: str
    error: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    sha256: str | None = None
    bytes: int | None = None


def forbids_ai(headers: list[str]) -> bool:
    """Whether X-Robots-Tag values (or meta robots contents) say noai / noimageai."""
    return any(NOAI.search(h) for h in headers)


def check_image(body: bytes, min_px: int = 100, max_px: int = 10_000,
                min_bytes: int = 500) -> ImageCheck:
    """Decode ``body`` fully and judge it as a packshot."""
    sha = hashlib.sha256(body).hexdigest()
    size = len(body)
    base: dict[str, Any] = {"sha256": sha, "bytes": size}
    if size < min_bytes:
        return ImageCheck("too_small", f"{size} bytes < {min_bytes}", **base)
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(body))
    except Exception as exc:  # Pillow raises several types for "not an image"
        return ImageCheck("not_image", f"{type(exc).__name__}: {exc}"[:200], **base)
    width, height = im.size
    fmt = im.format or ""
    info: dict[str, Any] = {"width": width, "height": height, "format": fmt.lower(), **base}
    if max(width, height) > max_px:
        return ImageCheck("too_large", f"{width}x{height} > {max_px} px", **info)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()  # decodes every byte: truncated and corrupt files fail here
    except Exception as exc:  # OSError, SyntaxError, ValueError, DecompressionBomb...
        return ImageCheck("corrupt", f"{type(exc).__name__}: {exc}"[:200], **info)
    if min(width, height) < min_px:
        return ImageCheck("too_small", f"{width}x{height} < {min_px} px", **info)
    return ImageCheck("ok", None, **info)


def save_image(folder: Path, body: bytes, check: ImageCheck) -> str:
    """Write ``body`` under ``folder/images/`` once; returns the path relative to folder."""
    ext = EXTENSIONS.get((check.format or "").upper(), "bin")
    sha = check.sha256 or hashlib.sha256(body).hexdigest()
    rel = Path("images") / sha[:2] / f"{sha}.{ext}"
    dest = folder / rel
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(f".{os.getpid()}.part")
        tmp.write_bytes(body)
        os.replace(tmp, dest)  # atomic: a kill never leaves half a file under the name
    return rel.as_posix()

"""Cache: garment's per-user cache folder, and derived files checked before each use.

A derived file (the ONNX export of a model) sits beside a JSON sidecar that records the
SHA-256 of what it was made from and of the file itself. ``cached`` trusts the file only
when both still match, so a stale export or a planted one is made again, never used. The
folder is the user's own (``$XDG_CACHE_HOME/garment``, else ``~/.cache/garment``), mode
0700: nothing sits at a predictable path in the shared temp folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from garment.errors import GarmentError

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".json"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/garment``, else ``~/.cache/garment`` (a relative XDG_CACHE_HOME
    is ignored, as the XDG spec asks)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "garment"


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) or check the existing one: it must belong to this user;
    group and others lose any access they had. Raises GarmentError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode):
            raise GarmentError(f"{path} is not a folder; remove it or set XDG_CACHE_HOME "
                               "to a folder of yours")
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise GarmentError(f"{path} belongs to another user; set XDG_CACHE_HOME to a "
                               "folder of yours")
        if info.st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise GarmentError(f"cannot use {path} as a cache folder ({exc.strerror or exc}); "
                           "set XDG_CACHE_HOME to a writable folder of yours") from exc
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sidecar_of(target: Path) -> Path:
    return target.with_name(target.name + SIDECAR_SUFFIX)


def is_valid(target: Path, inputs: dict[str, str]) -> bool:
    """Whether ``target`` was made from exactly ``inputs`` and is unchanged since."""
    try:
        record = json.loads(sidecar_of(target).read_text(encoding="utf-8"))
        return record.get("inputs") == inputs and record.get("sha256") == sha256_file(target)
    except (OSError, ValueError, AttributeError):
        return False


def cached(target: Path, inputs: dict[str, str], make: Callable[[Path], None]) -> Path:
    """``target``, made by ``make(path)`` unless a valid one (``is_valid``) is there.

    ``inputs`` names what the file is made from (e.g. {"weights": sha256, ...}); the file
    and its sidecar are each written under a unique temporary name and renamed into place,
    so a concurrent run never reads half a file (and a mismatch at worst makes it again).
    """
    if is_valid(target, inputs):
        return target
    if target.exists():
        log.warning("%s does not match its sidecar (stale or altered): making it again", target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.",
                                    suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        make(tmp)
        digest = sha256_file(tmp)
        os.replace(tmp, target)
        _write_atomic(sidecar_of(target), json.dumps({"inputs": inputs, "sha256": digest},
                                                     indent=1, sort_keys=True))
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise

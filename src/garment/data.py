"""Data: find, verify, read and download Fashion-MNIST's IDX files.

A folder written by ``garment dataset --format fmnist`` holds files in the same format with
other contents: its ``dataset.json`` gives their MD5s, checked instead of the official ones
(never in Fashion-MNIST's own folders, the cache and Debian's, where only the official
checksums count).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from garment.cache import user_cache_dir
from garment.errors import ChecksumError, DataNotFoundError, GarmentError

BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
#: In the per-user cache: ``$XDG_CACHE_HOME/garment``, else ``~/.cache/garment``.
CACHE_DIR = user_cache_dir() / "fashion-mnist"
#: Where only Fashion-MNIST itself is kept: a dataset manifest there is ignored.
OFFICIAL_DIRS = (CACHE_DIR, DEBIAN_DIR)
#: A garment dataset's manifest (``garment.dataset``), with the MD5 of each IDX file's bytes.
MANIFEST = "dataset.json"

# name -> (MD5 of the official .gz, MD5 of the uncompressed IDX bytes).
# Debian re-compresses the files, so its .gz MD5s differ from the official ones while the
# IDX bytes are identical: verification is on the uncompressed bytes, which holds for the
# official .gz, Debian's .gz and raw files alike. A download also checks the .gz MD5.
FILES: dict[str, tuple[str, str]] = {
    "train-images-idx3-ubyte": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    ),
    "train-labels-idx1-ubyte": (
        "25c81989df183df01b3e8a0aad5dffbe",
        "9018921c3c673c538a1fc5bad174d6f9",
    ),
    "t10k-images-idx3-ubyte": (
        "bef4ecab320f06d8554ea6380940ec79",
        "8181f5470baa50b63fa0f6fddb340f0a",
    ),
    "t10k-labels-idx1-ubyte": (
        "bb300cfdad3c16e7a12a480ee83cd310",
        "15d484375f8d13e6eb1aabb0c3f46965",
    ),
}
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

HOW_TO_GET = (
    "Fashion-MNIST not found. Get it one of three ways: "
    "(1) `sudo apt-get install dataset-fashion-mnist` (Debian, into /usr/share/datasets/fashion-mnist); "
    f"(2) `garment data --download` (online, into {CACHE_DIR}); "
    "(3) put the four .gz files in a folder and pass --data-dir DIR or set GARMENT_DATA=DIR."
)

# IDX type codes (http://yann.lecun.com/exdb/mnist/): only unsigned bytes are used here.
_IDX_UBYTE = 0x08


@dataclass(frozen=True)
class DataLocation:
    """Where the Fashion-MNIST files were found and whether they verify."""

    folder: Path
    files: dict[str, Path]
    verified: dict[str, bool]
    manifest: Path | None = None  # a garment dataset's dataset.json the files were checked against

    @property
    def ok(self) -> bool:
        return all(self.verified.values())


def candidate_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Folders searched, in order: --data-dir, $GARMENT_DATA, the user cache, Debian's folder."""
    dirs: list[Path] = []
    if data_dir:
        dirs.append(Path(data_dir).expanduser())
    if os.environ.get("GARMENT_DATA"):
        dirs.append(Path(os.environ["GARMENT_DATA"]).expanduser())
    dirs += [CACHE_DIR, DEBIAN_DIR]
    return dirs


def _file_in(folder: Path, name: str) -> Path | None:
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            return path
    return None


def find_data(data_dir: str | Path | None = None) -> Path:
    """Return the first folder holding all four IDX files, or raise with the three ways to get them.

    An explicit ``data_dir`` that lacks the files is an error of its own, never silently
    replaced by another folder.
    """
    for i, folder in enumerate(candidate_dirs(data_dir)):
        if all(_file_in(folder, name) for name in FILES):
            return folder
        if i == 0 and data_dir:
            missing = [n for n in FILES if not _file_in(folder, n)]
            raise DataNotFoundError(
                f"--data-dir {folder}: missing {', '.join(missing)} (.gz or raw). {HOW_TO_GET}"
            )
    raise DataNotFoundError(HOW_TO_GET)


def read_bytes(path: Path) -> bytes:
    """The IDX bytes of a file, gzipped or raw (gzip is recognised by its magic number)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise GarmentError(f"{path}: not a valid gzip file ({exc}); delete it and fetch it again") from exc
    return raw


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (unsigned-byte type only) into an array of the declared shape."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise GarmentError(f"{source}: not an IDX file (bad magic number)")
    if data[2] != _IDX_UBYTE:
        raise GarmentError(f"{source}: IDX type 0x{data[2]:02x} unsupported; only unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) if shape else 0
    if len(data) - header != expected:
        raise GarmentError(
            f"{source}: IDX says shape {shape} ({expected} bytes) but has {len(data) - header}; "
            "the file is truncated or corrupt, fetch it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _IDX_UBYTE, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    payload = header + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path


def expected_md5(folder: Path) -> tuple[dict[str, str], Path | None]:
    """The MD5 each IDX file in ``folder`` must have (of its uncompressed bytes), and the
    manifest that says so: the official ones, or a garment dataset's own from its
    ``dataset.json`` (outside ``OFFICIAL_DIRS``)."""
    official = {name: md5 for name, (_, md5) in FILES.items()}
    manifest = folder / MANIFEST
    if any(folder.resolve() == d.resolve() for d in OFFICIAL_DIRS) or not manifest.is_file():
        return official, None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        md5 = data["md5"] if data.get("format") == "garment-dataset" else None
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise GarmentError(f"{manifest}: not a dataset manifest garment can read ({exc}); write the "
                           "dataset again with `garment dataset`, or remove the file") from exc
    if md5 is None:
        return official, None  # another program's dataset.json: the folder is Fashion-MNIST's
    if not isinstance(md5, dict) or set(md5) != set(FILES) or not all(
            isinstance(v, str) and len(v) == 32 for v in md5.values()):
        raise GarmentError(f"{manifest}: 'md5' must give the MD5 of each of {', '.join(FILES)}; "
                           "write the dataset again with `garment dataset --format fmnist`")
    return dict(md5), manifest


def verify_file(path: Path, name: str, md5: str | None = None) -> bool:
    """True when the uncompressed IDX bytes match ``md5`` (default: the official MD5)."""
    return hashlib.md5(read_bytes(path)).hexdigest() == (md5 or FILES[name][1])


def locate(data_dir: str | Path | None = None, verify: bool = True) -> DataLocation:
    """Find the data and (optionally) verify each file's checksum."""
    folder = find_data(data_dir)
    files = {name: _file_in(folder, name) for name in FILES}
    paths = {name: p for name, p in files.items() if p is not None}
    md5, manifest = expected_md5(folder)
    verified = {name: verify_file(p, name, md5[name]) if verify else True for name, p in paths.items()}
    return DataLocation(folder, paths, verified, manifest)


def load_split(
    split: str, data_dir: str | Path | None = None, verify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``split`` ("train" or "test") as (images uint8 (N, 28, 28), labels int64 (N,))."""
    if split not in SPLITS:
        raise GarmentError(f"split {split!r} unknown; use one of {sorted(SPLITS)}")
    folder = find_data(data_dir)
    md5, manifest = expected_md5(folder) if verify else ({}, None)
    arrays = []
    for name in SPLITS[split]:
        path = _file_in(folder, name)
        assert path is not None  # find_data checked all four
        data = read_bytes(path)
        if verify and manifest is not None and hashlib.md5(data).hexdigest() != md5[name]:
            raise ChecksumError(f"{path}: MD5 does not match the one in {manifest}; the file changed "
                                "since `garment dataset` wrote it: write the dataset again")
        if verify and manifest is None and hashlib.md5(data).hexdigest() != FILES[name][1]:
            raise ChecksumError(
                f"{path}: MD5 does not match the official Fashion-MNIST checksum; "
                "the file is corrupt or not Fashion-MNIST: delete it and fetch it again "
                "(`garment data --download`)"
            )
        arrays.append(parse_idx(data, str(path)))
    images, labels = arrays
    if len(images) != len(labels):
        raise GarmentError(f"{folder}: {len(images)} images but {len(labels)} labels in {split}")
    return images, labels.astype(np.int64)


def download(
    dest: str | Path = CACHE_DIR,
    progress: Callable[[str, int, int], None] | None = None,
    base_url: str = BASE_URL,
) -> Path:
    """Fetch the four official files into ``dest``, checking each .gz MD5 before keeping it.

    ``progress(name, bytes_done, bytes_total)`` is called as data arrives.
    """
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    for name, (gz_md5, _) in FILES.items():
        target = dest / f"{name}.gz"
        if target.is_file() and hashlib.md5(target.read_bytes()).hexdigest() == gz_md5:
            continue
        tmp = target.with_suffix(".gz.part")
        digest = hashlib.md5()
        url = base_url + f"{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, tmp.open("wb") as out:
                total = int(resp.headers.get("Content-Length") or 0)
                done = 0
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(name, done, total)
        except (urllib.error.URLError, OSError) as exc:  # offline, refused, timed out, HTTP error
            tmp.unlink(missing_ok=True)
            reason = getattr(exc, "reason", None) or exc.strerror or exc
            raise GarmentError(f"cannot download {url} ({reason}); check the network, or get the "
                               "files another way: apt-get install dataset-fashion-mnist, or "
                               "--data-dir DIR holding the four .gz files") from exc
        if digest.hexdigest() != gz_md5:
            tmp.unlink(missing_ok=True)
            raise ChecksumError(f"{base_url}{name}.gz: downloaded file fails its MD5 check; try again")
        tmp.replace(target)
    return dest

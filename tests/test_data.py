"""Fashion-MNIST files: finding, parsing, checksums, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from garment import data
from garment.errors import ChecksumError, DataNotFoundError, GarmentError


def test_idx_round_trip_gzip_and_raw(tmp_path: Path) -> None:
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("x.gz", "x"):
        path = data.write_idx(tmp_path / name, a)
        assert np.array_equal(data.parse_idx(data.read_bytes(path)), a)
    assert (tmp_path / "x.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_truncated_idx_is_reported(tmp_path: Path) -> None:
    path = data.write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(GarmentError, match="truncated"):
        data.parse_idx(path.read_bytes(), str(path))


def test_load_split_from_data_dir(tiny_fmnist: Path) -> None:
    x, y = data.load_split("train", tiny_fmnist, verify=False)
    assert x.shape == (400, 28, 28) and x.dtype == np.uint8
    assert y.shape == (400,) and set(y.tolist()) == set(range(10))


def test_env_var_is_searched(tiny_fmnist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARMENT_DATA", str(tiny_fmnist))
    assert data.find_data() == tiny_fmnist
    assert data.candidate_dirs()[-2:] == [data.CACHE_DIR, data.DEBIAN_DIR]


def test_md5_mismatch_is_reported_clearly(tiny_fmnist: Path) -> None:
    with pytest.raises(ChecksumError, match="MD5 does not match.*garment data --download"):
        data.load_split("test", tiny_fmnist)
    loc = data.locate(tiny_fmnist)
    assert not loc.ok and set(loc.verified) == set(data.FILES)


def test_verification_is_on_uncompressed_bytes(tmp_path: Path) -> None:
    # Re-compressing a file changes the .gz MD5 but not the IDX bytes: still verifies.
    payload = b"hello"
    (tmp_path / "f.gz").write_bytes(gzip.compress(payload, compresslevel=1))
    assert data.read_bytes(tmp_path / "f.gz") == payload


def test_missing_data_names_three_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GARMENT_DATA", raising=False)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    with pytest.raises(DataNotFoundError) as exc:
        data.find_data()
    msg = str(exc.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "--download" in msg and "GARMENT_DATA" in msg
    with pytest.raises(DataNotFoundError, match="--data-dir"):
        data.find_data(tmp_path)


@pytest.mark.skipif(not data.DEBIAN_DIR.is_dir(), reason="Fashion-MNIST not installed in /usr/share/datasets")
def test_real_files_verify() -> None:
    assert data.locate(data.DEBIAN_DIR).ok

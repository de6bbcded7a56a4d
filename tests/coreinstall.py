"""The core install, as a user gets it: build the sdist and the wheel, install the wheel without
extras into a fresh venv, measure it (tests/test_package.py, benchmarks/install_size.py).

pip reaches only the package indexes this machine is configured with (PyPI and local mirrors);
nothing else leaves 127.0.0.1. When no index answers, ``IndexUnreachable`` says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What the sdist is made from (build outputs, caches and the compiled kernel left out).
SOURCES = ("src", "setup.py", "pyproject.toml", "README.md", "LICENSE")
IGNORED = shutil.ignore_patterns("*.so", "__pycache__", "*.egg-info", "checkpoint", "tensorboard")
#: pip's words for an index it could not reach.
OFFLINE_SIGNS = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
                 "Network is unreachable", "ConnectTimeoutError", "ProxyError")
#: The issue's target for the core install, in MB (10^6 bytes).
TARGET_MB = 500.0


class IndexUnreachable(RuntimeError):
    """pip could not reach a package index for the core dependencies."""


def build_dist(work: Path, timeout: float = 300) -> tuple[Path, Path]:
    """``python -m build`` on a clean copy of the sources: the sdist, then the wheel built from
    that sdist (so the sdist is shown to compile the C kernel). Returns (wheel, sdist)."""
    tree, out = work / "tree", work / "dist"
    tree.mkdir(parents=True)
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tree / name, ignore=IGNORED)
        else:
            shutil.copy2(src, tree / name)
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(tree)],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        _raise_offline(proc.stdout + proc.stderr)
        raise RuntimeError(f"python -m build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def core_venv(wheel: Path, venv: Path, timeout: float = 600) -> Path:
    """A fresh venv with ``wheel`` installed, no extras, and no compiler reachable (CC and CXX
    point to ``false``: anything that would compile fails). Returns the venv's ``bin``."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    env = {**os.environ, "CC": "false", "CXX": "false", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        _raise_offline(proc.stdout + proc.stderr)
        raise RuntimeError(f"pip install {wheel.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return bin_dir


def tree_bytes(path: Path) -> int:
    """Bytes on disk under ``path`` (allocated blocks, as ``du``; a hard-linked file once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def largest(site_packages: Path, n: int = 8) -> list[tuple[str, int]]:
    """The ``n`` largest entries of a site-packages folder, in bytes."""
    sizes = [(p.name, tree_bytes(p) if p.is_dir() else p.lstat().st_blocks * 512) for p in site_packages.iterdir()]
    return sorted(sizes, key=lambda s: -s[1])[:n]


def _raise_offline(output: str) -> None:
    if any(sign in output for sign in OFFLINE_SIGNS):
        raise IndexUnreachable(output.strip().splitlines()[-1][:300])

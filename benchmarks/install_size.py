"""Size of the core install: the wheel without extras in a fresh venv, on disk.

Builds the sdist and the wheel (``python -m build``; the wheel from the sdist), installs the
wheel with no extras and no compiler into a fresh venv in a temp folder (removed afterwards),
and prints the venv's size (allocated blocks, as ``du``) and its largest packages. pip reaches
only the configured package indexes. Target: at most 500 MB (10^6 bytes), with no PyTorch.

    python benchmarks/install_size.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from coreinstall import TARGET_MB, IndexUnreachable, build_dist, core_venv, largest, tree_bytes  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="garment-install-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        try:
            wheel, sdist = build_dist(work)
            bin_dir = core_venv(wheel, work / "venv")
        except IndexUnreachable as exc:
            print(f"no package index reachable: {exc}", file=sys.stderr)
            return 2
        seconds = time.monotonic() - started
        torch = subprocess.run([str(bin_dir / "python"), "-c", "import torch"], capture_output=True).returncode == 0
        (site,) = (bin_dir.parent / "lib").glob("python3*/site-packages")
        figures = {
            "venv_mb": round(tree_bytes(bin_dir.parent) / 1e6, 1),
            "target_mb": TARGET_MB,
            "torch_installed": torch,
            "wheel_mb": round(wheel.stat().st_size / 1e6, 2),
            "sdist_mb": round(sdist.stat().st_size / 1e6, 2),
            "build_and_install_s": round(seconds, 1),
            "largest_mb": {name: round(size / 1e6, 1) for name, size in largest(site, 10)},
            "python": sys.version.split()[0],
        }
    print(f"core install: {figures['venv_mb']:.0f} MB in a fresh venv (target <= {TARGET_MB:.0f} MB), "
          f"torch installed: {torch}; wheel {figures['wheel_mb']} MB, sdist {figures['sdist_mb']} MB; "
          f"built and installed in {seconds:.0f} s")
    for name, mb in figures["largest_mb"].items():
        print(f"  {name:40s} {mb:7.1f} MB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    ok = figures["venv_mb"] <= TARGET_MB and not torch
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The package as users install it: the core install (no extras) classifies without PyTorch.

Builds the sdist and the wheel (``python -m build``, the wheel compiled from the sdist),
installs the wheel without extras into a fresh venv with no compiler, and there: PyTorch is
absent, ``garment classify`` labels photos made here with PIL using the shipped model's own
ONNX export (nothing written to the user's cache), a missing extra is one line naming it,
and the venv's size is printed and held to the target. Skipped when no package index answers.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from needs import needs_fmnist

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the bin folder of a fresh venv with only the core install)."""
    pytest.importorskip("build", reason="python -m build is in the dev extra")
    from coreinstall import IndexUnreachable, build_dist, core_venv

    work = tmp_path_factory.mktemp("core")
    try:
        wheel, _ = build_dist(work)
        return wheel, core_venv(wheel, work / "venv")
    except IndexUnreachable as exc:
        pytest.skip(f"no package index reachable: {exc}")


def _run(bin_dir: Path, *args: str, cwd: Path, home: Path,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``args`` in the venv, as a user with an empty HOME and none of garment's variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "GARMENT_", "VIRTUAL_ENV"))}
    clean.update(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{clean.get('PATH', '')}", **(env or {}))
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=clean, capture_output=True,
                          text=True, timeout=120)


def test_wheel_carries_the_kernel_the_model_and_its_export(core: tuple[Path, Path]) -> None:
    wheel, _ = core
    names = set(zipfile.ZipFile(wheel).namelist())
    assert any(n.startswith("garment/_convert.") and n.endswith(".so") for n in names)
    for name in ("model.safetensors", "model.json", "model.onnx", "model.onnx.json"):
        assert f"garment/weights/default/{name}" in names
    assert "garment-0.1.0.dist-info/licenses/LICENSE" in names
    meta = zipfile.ZipFile(wheel).read("garment-0.1.0.dist-info/METADATA").decode()
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert not any("==" in line.split(";")[0] for line in requires), "no exact pins in the package metadata"
    core_requires = [line for line in requires if "extra ==" not in line]
    assert not any(name in line for line in core_requires for name in ("torch", "onnxruntime", "pyarrow"))


def test_core_install_classifies_without_torch(core: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image, ImageDraw

    from coreinstall import TARGET_MB, largest, tree_bytes

    _, bin_dir = core
    home = tmp_path / "home"
    home.mkdir()
    no_torch = _run(bin_dir, "python", "-c", "import torch", cwd=tmp_path, home=home)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr

    photos = []
    for i, (shape, colour) in enumerate([("rect", (30, 30, 30)), ("ellipse", (120, 20, 20)), ("rect", (10, 10, 90))]):
        img = Image.new("RGB", (90, 120), "white")
        draw = ImageDraw.Draw(img)
        getattr(draw, "rectangle" if shape == "rect" else "ellipse")([15 + 5 * i, 10, 75, 110], fill=colour)
        photos.append(tmp_path / f"photo{i}.jpg")
        img.save(photos[-1], quality=90)
    result = _run(bin_dir, "garment", "classify", *map(str, photos), cwd=tmp_path, home=home)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["path"] for r in rows] == list(map(str, photos))
    assert all(r["status"] == "ok" and r["label"] for r in rows), rows
    assert not (home / ".cache" / "garment" / "onnx").exists(), "the shipped export is used, not a new one"

    for args, extra in ((("classify", "--backend", "onnx", str(photos[0])), "garment[onnxruntime]"),
                        (("classify", "--backend", "torch", str(photos[0])), "garment[train]"),
                        (("train", "--out", str(tmp_path / "model")), "garment[train]")):
        missing = _run(bin_dir, "garment", *args, cwd=tmp_path, home=home)
        assert missing.returncode != 0 and extra in missing.stderr, (args, missing.stderr)
        assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr, missing.stderr

    size_mb = tree_bytes(bin_dir.parent) / 1e6
    (site,) = (bin_dir.parent / "lib").glob("python3*/site-packages")
    with capsys.disabled():
        print(f"\ncore install: {size_mb:.0f} MB in a fresh venv (target <= {TARGET_MB:.0f} MB); largest: "
              + ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in largest(site, 5)))
    assert size_mb <= TARGET_MB


@needs_fmnist
def test_core_install_runs_the_demo_and_exports(core: tuple[Path, Path], tmp_path: Path) -> None:
    """Shop, crawl, classify, report and CSV export in the core install; Parquet names its extra."""
    from garment.data import find_data

    _, bin_dir = core
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "demo"
    env = {"GARMENT_DATA": str(find_data())}
    demo = _run(bin_dir, "garment", "demo", "--products", "10", "--out", str(out), cwd=tmp_path, home=home, env=env)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert (out / "report.html").is_file()
    catalogue = next(p.parent for p in out.rglob("catalogue.sqlite"))
    export = _run(bin_dir, "garment", "export", "--catalogue", str(catalogue), "--out", str(tmp_path / "c.csv"),
                  cwd=tmp_path, home=home)
    assert export.returncode == 0, export.stderr
    assert len(list(csv.DictReader((tmp_path / "c.csv").open()))) == 10
    parquet = _run(bin_dir, "garment", "export", "--catalogue", str(catalogue), "--out", str(tmp_path / "c.parquet"),
                   cwd=tmp_path, home=home)
    assert parquet.returncode != 0 and "garment[parquet]" in parquet.stderr, parquet.stderr
    assert len(parquet.stderr.strip().splitlines()) == 1, parquet.stderr

"""The CLI: every command has help; the README's cheap commands run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from garment.cli import app
from garment.data import DEBIAN_DIR

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


def test_root_help(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--help")
    assert result.exit_code == 0 and "Fashion-MNIST" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert len(result.output.strip().splitlines()) > 3


def test_python_dash_m_and_clean_errors(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "garment", "data", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --data-dir") and "Traceback" not in out.stderr


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Fashion-MNIST not installed in /usr/share/datasets")
def test_evaluate_shipped_model_on_fashion_mnist(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = subprocess.run([sys.executable, "-m", "garment", "evaluate", "--fashion-mnist", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["accuracy"] >= 0.94
    assert set(report) >= {"accuracy", "per_class", "confusion"}

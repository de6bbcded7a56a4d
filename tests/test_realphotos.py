"""Real-photo accuracy of the shipped model on the development photos (issue targets).

Runs `garment evaluate` exactly as the README shows it, so no later change quietly loses
real-photo accuracy. Skipped when ../shared/realphotos-dev is not beside the repository.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "realphotos-dev"


@pytest.mark.skipif(not (DEV / "labels.csv").is_file(),
                    reason=f"{DEV} not present (the real-photo development set lives outside the repository)")
def test_shipped_model_meets_real_photo_targets(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = subprocess.run([sys.executable, "-m", "garment", "evaluate", str(DEV / "labels.csv"),
                             "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    r = json.loads(out.read_text())
    assert r["n"] == 564
    assert r["in_scope_accuracy"] >= 0.75
    assert r["other_auroc"] >= 0.80
    assert r["overall_accuracy"] >= 0.70

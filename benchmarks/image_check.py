"""Packshot check cost: peak memory and time of ``check_image`` on large images.

Each check runs in a fresh process, so its peak resident memory (max RSS growth) is its
own. The images are made here: a 9400x9400 PNG (over the pixel limit: refused from its
header) and a 6000x8000 JPEG (decoded at reduced scale by classify: accepted, checked by
its structure). Before the header-only check, the PNG cost 339 MB and 2.3 s.

    python benchmarks/image_check.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import resource, sys, time
from garment.scrape.images import check_image
import garment.convert  # imported by the check: not counted in its memory
body = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
check = check_image(body)
ms = (time.perf_counter() - t) * 1000
mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(f"{check.width}x{check.height} {check.format}: {check.status}, {mb:.1f} MB, {ms:.0f} ms"
      f"{'  (' + check.error + ')' if check.error else ''}")
"""


def main() -> None:
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        png, jpeg = Path(tmp) / "big.png", Path(tmp) / "big.jpg"
        Image.new("RGB", (9400, 9400), (200, 30, 60)).save(png)
        Image.new("L", (6000, 8000), 128).save(jpeg, quality=80)
        for path in (png, jpeg):
            subprocess.run([sys.executable, "-c", CHILD, str(path)], check=True, timeout=120)


if __name__ == "__main__":
    main()

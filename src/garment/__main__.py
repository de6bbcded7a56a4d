"""``python -m garment``: the same as the ``garment`` command."""

from garment.cli import main

main()

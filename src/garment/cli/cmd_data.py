"""``garment data``: where Fashion-MNIST is and whether it verifies; ``--download`` fetches it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from garment import data
from garment.cli import app, is_quiet


@app.command("data")
def data_cmd(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder holding the four IDX files."),
    download: bool = typer.Option(False, "--download",
                                  help="Fetch the official files into $XDG_CACHE_HOME/garment/fashion-mnist "
                                       "(default ~/.cache/garment/fashion-mnist) or --data-dir, "
                                       "with an MD5 check."),
) -> None:
    """Say where Fashion-MNIST is and whether every file matches its official MD5."""
    if download:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), transient=True,
                      disable=is_quiet()) as bar:
            tasks: dict[str, Any] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total or None)
                bar.update(tasks[name], completed=done)

            dest = data.download(data_dir or data.CACHE_DIR, progress=progress, base_url=data.BASE_URL)
        typer.echo(f"downloaded to {dest}")
    loc = data.locate(data_dir)
    typer.echo(f"Fashion-MNIST: {loc.folder}")
    for name, path in loc.files.items():
        typer.echo(f"  {'ok ' if loc.verified[name] else 'BAD'}  {path.name}")
    if not loc.ok:
        bad = ", ".join(n for n, ok in loc.verified.items() if not ok)
        typer.echo(f"error: {bad} fail the MD5 check; delete them and run `garment data --download`",
                   err=True)
        raise typer.Exit(1)
    typer.echo("all four files match " + ("the official MD5 checksums" if loc.manifest is None
                                          else f"the MD5 checksums in {loc.manifest} (a garment dataset)"))

"""``garment review``: go through a catalogue's labels in the browser and correct them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from garment.cli import IMAGES_HELP, app, catalogue_option, model_option


@app.command("review")
def review_cmd(
    catalogue: Annotated[str, typer.Option(
        "--catalogue", help="Catalogue folder or postgresql:// URL written by `garment scrape` "
                            "(classified).")] = "catalogue",
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP, show_default=False)] = None,
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535, help="Port to listen on (0: any free port).")] = 8642,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on; the default keeps the catalogue on this machine. "
                       "Requests must name it or a loopback name in their Host header.")] = "127.0.0.1",
    model: Annotated[str | None, typer.Option(
        "--model", help="Review this model's labels: a model folder, a shipped model name (default) "
                        "or a model id stored in the catalogue (default: the latest classified).")] = None,
) -> None:
    """Serve a local review page: every product with its packshot, the 28x28 image the network
    saw, its label, confidence and source; filter, search, sort least-confident first and
    correct labels with one click or key (1-0, o). Corrections are stored as human labels
    that win in export, report and dataset. Ctrl-C stops."""
    from garment.review import ReviewConfig, ReviewServer

    server = ReviewServer(ReviewConfig(catalogue=catalogue_option(catalogue, images), host=host, port=port,
                                       model=model_option(model, stored=True)))
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: anyone who can reach it can read the catalogue", err=True)
    from garment.store import describe

    typer.echo(f"reviewing {describe(catalogue)}: open {server.url}")
    typer.echo(f"token for scripts (header X-Garment-Token): {server.config.token}")
    typer.echo("Ctrl-C stops")
    server.run()

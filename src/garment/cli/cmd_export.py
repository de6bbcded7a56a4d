"""``garment export``: a catalogue as one table (CSV, JSONL or Parquet), to a file or stdout."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from garment.cli import IMAGES_HELP, app, catalogue_option, model_option


@app.command("export")
def export_cmd(
    catalogue: Annotated[str, typer.Option(
        "--catalogue", help="Catalogue folder or postgresql:// URL written by `garment scrape`.")] = "catalogue",
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP, show_default=False)] = None,
    out: Annotated[str, typer.Option(
        "--out", help="Output file: .csv, .jsonl or .parquet; - for standard output (CSV, or "
                      "--format jsonl).")] = "catalogue.csv",
    fmt: Annotated[str | None, typer.Option(
        "--format", help="csv, jsonl or parquet; default: from --out's extension (csv for -).",
        show_default=False)] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Whose labels: a model folder, a shipped model name (default) or a model "
                        "id stored in the catalogue (default: the latest classified).",
        show_default=False)] = None,
    json_summary: Annotated[bool, typer.Option(
        "--json", help="Print the summary as one JSON object on standard output (catalogue: "
                       "the folder image_path is relative to).")] = False,
) -> None:
    """Write one row per product: URL, sku, name, brand, price, availability, crawl time,
    packshot (path relative to the catalogue), status, and the labels with the model id,
    score and top classes. Every column: docs/export-columns.md."""
    from garment.export import write_export

    if out == "-" and json_summary:
        raise typer.BadParameter("--json prints the summary on standard output: pass --out FILE "
                                 "for the rows", param_hint="--json")
    summary = write_export(catalogue_option(catalogue, images), out, model=model_option(model, stored=True), fmt=fmt,
                           stream=sys.stdout if out == "-" else None)
    if json_summary:
        typer.echo(json.dumps(asdict(summary)))
    elif out != "-":
        typer.echo(f"{summary.rows} products written to {out}"
                   + (f" (labels of {summary.model_id})" if summary.model_id else ""))

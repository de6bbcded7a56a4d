"""``garment report``: a classified catalogue as one self-contained HTML page (+ JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from garment.cli import IMAGES_HELP, app, catalogue_option, model_option


@app.command("report")
def report_cmd(
    catalogue: Annotated[str, typer.Option(
        "--catalogue", help="Catalogue folder or postgresql:// URL written by `garment scrape`.")] = "catalogue",
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP, show_default=False)] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Show this model's labels: a model folder, a shipped model name (default) "
                        "or a model id stored in the catalogue (default: the latest classified).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="HTML file; default: CATALOGUE/report.html (report.json beside it).")] = None,
    gallery_size: Annotated[int, typer.Option(
        "--gallery-size", min=0, help="Thumbnails per class before 'N more'.")] = 24,
    json_summary: Annotated[bool, typer.Option(
        "--json", help="Print the summary as one JSON object on standard output.")] = False,
) -> None:
    """Write report.html: summary, image against text (agreement, conflicts to review),
    galleries of the final labels, "other", lowest confidence, failures, shop categories
    against final labels, crawl stats and the model card (with its adaptation, if adapted)."""
    from garment.report import ReportConfig, write_report

    files = write_report(ReportConfig(catalogue=catalogue_option(catalogue, images),
                                      model=model_option(model, stored=True), out=out, gallery_size=gallery_size))
    s = files.data["summary"]
    if json_summary:
        it = files.data.get("image_text") or {}
        typer.echo(json.dumps({"catalogue": files.data["catalogue"],
                               "model_id": (files.data.get("model") or {}).get("id"),
                               "html": str(files.html), "json": str(files.json), **s,
                               "image_text_agreement": it.get("agreement_rate"),
                               "to_review": (files.data.get("review") or {}).get("count")}, default=str))
        return
    typer.echo(f"{s['products']} products, {s['classified']} classified, {s['failed']} failed")
    if s.get("agreement"):
        a = s["agreement"]
        typer.echo(f"agreement with the shop's categories: {100 * a['rate']:.1f}% "
                   f"({a['agree']} of {a['n']})")
    it = files.data.get("image_text") or {}
    if it.get("both"):
        typer.echo(f"image and text agree: {100 * it['agreement_rate']:.1f}% ({it['agree']} of {it['both']}); "
                   f"{files.data['review']['count']} to review")
    typer.echo(f"wrote {files.html} and {files.json}")

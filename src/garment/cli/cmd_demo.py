"""``garment demo``: serve the demo shop, crawl it, classify the catalogue and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from garment.cli import app, model_option


@app.command("demo")
def demo_cmd(
    images: Annotated[Path | None, typer.Option(
        "--images", help="Folder of product photos for the shop to sell (subfolders are "
                         "categories; a labels.csv is read). Default: Fashion-MNIST test "
                         "items.")] = None,
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for the catalogue and report.html.")] = Path("demo-out"),
    products: Annotated[int, typer.Option(
        "--products", min=1, max=10_000, help="Built-in shop size.")] = 200,
    model: Annotated[str | None, typer.Option(
        "--model", help="Model folder or shipped model name (default); default: the shipped model.",
        show_default=False)] = None,
    delay: Annotated[float, typer.Option(
        "--delay", min=0, help="Seconds between requests to one host.")] = 0.05,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Discard what an earlier demo stored in --out and crawl again.")] = False,
) -> None:
    """Start the local demo shop, crawl it, classify its catalogue, write a report, stop."""
    from rich.console import Console

    from garment.classify import ClassifyConfig
    from garment.demo import DemoConfig, run_demo

    config = DemoConfig(images=images, out=out, n_products=products, delay=delay, fresh=fresh,
                        classify=ClassifyConfig(model_dir=model_option(model)))
    err = Console(stderr=True)
    with err.status("starting the demo shop") as status:

        def progress(stage: str, event: dict[str, Any]) -> None:
            if stage == "shop":
                err.print(f"demo shop: {event['products']} products at {event['url']}")
            elif stage == "crawl":
                images_ = event.get("images") or {}
                status.update(f"crawling: pages {event.get('pages', 0)}, products "
                              f"{event.get('products', 0)}, packshots {images_.get('ok', 0)}")
            elif stage == "classify":
                status.update(f"classifying: {event['done']} of {event['total']}")
            else:
                status.update("writing the report")

        result = run_demo(config, progress)
    _print_summary(result)


def _print_summary(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    s, t = result.summary, result.timings
    if result.reused:
        console.print(f"catalogue: reused {s['products']} products stored in {result.out}")
    else:
        c = result.crawl
        console.print(f"crawled {c.products} products ({c.pages} pages, "
                      f"{c.images.get('ok', 0)} packshots) in {t['crawl']:.1f} s")
    k = result.classified
    console.print(f"classified {k.classified} packshots with {k.model_id} in "
                  f"{t['classify']:.1f} s" + (f" ({k.reused} already done)" if k.reused else "")
                  + (f", {k.failed} failed" if k.failed else ""))
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column("class")
    table.add_column("products", justify="right")
    for label, n in s["per_class"].items():
        table.add_row(label, str(n))
    console.print(table)
    for key, what in (("agreement", "final labels (image and text)"), ("agreement_image", "the image's own labels")):
        agreement = s.get(key)
        if agreement:
            console.print(f"{what} agree with the shop's categories: {100 * agreement['rate']:.1f}% "
                          f"({agreement['agree']} of {agreement['n']}), top class: "
                          f"{100 * (agreement['in_scope'] or 0):.1f}%")
    console.print(f"report: {result.report}  ({t['total']:.1f} s in all)")

"""``garment extract``: what garment reads from saved product pages, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from garment.cli import app


@app.command("extract")
def extract_cmd(
    pages: Annotated[list[Path], typer.Argument(help="Saved HTML pages.")],
    url: Annotated[str | None, typer.Option(
        "--url", help="The address the pages were saved from (relative links and images "
                      "resolve against it); default: each page's canonical link or og:url.")] = None,
    site: Annotated[Path | None, typer.Option(
        "--site", help="Site profile (TOML) applied after the page's markup.")] = None,
) -> None:
    """Extract products from saved pages: one JSON object per page on stdout (url, name,
    sku, brand, price, currency, availability, category, image_url, image_urls, sources;
    product is false for a page that is no product page)."""
    from garment.scrape.extract import extract_pages

    for row in extract_pages(list(pages), url=url, site=site):
        typer.echo(json.dumps(row, ensure_ascii=False))

"""``garment shop``: serve the local demo shop until Ctrl-C."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from garment.cli import app


@app.command("shop")
def shop_cmd(
    images: Annotated[Path | None, typer.Option(
        "--images", help="Folder of product photos to sell (subfolders are categories; "
                         "a labels.csv is read). Default: Fashion-MNIST test items.")] = None,
    products: Annotated[int, typer.Option(
        "--products", help="Built-in catalogue size (1-10000).")] = 60,
    port: Annotated[int, typer.Option(
        "--port", help="Port on 127.0.0.1; 0 for any free one.")] = 8000,
    latency: Annotated[float, typer.Option(
        "--latency", help="Milliseconds added to every response.")] = 0.0,
    faults: Annotated[float, typer.Option(
        "--faults", help="Share of requests answered 503 and of images cut short.")] = 0.0,
    seed: Annotated[int, typer.Option(
        "--seed", help="Seed for the catalogue, colours and faults.")] = 0,
    markup: Annotated[str, typer.Option(
        "--markup", help="Product-page data: jsonld, microdata, opengraph or mixed.")] = "jsonld",
    blind: Annotated[bool, typer.Option(
        "--blind", help="Pages never name a product's class: only its name and description "
                        "(a labels.csv's product_text) and a department: women, men, footwear "
                        "(sandals, sneakers, ankle boots) or accessories (bags, other); clothes "
                        "go to women or men by the name's own words, else by a seeded coin toss. "
                        "Listings by department only, prices drawn alike for every class, "
                        "products in shuffled order, images named by SKU.")] = False,
) -> None:
    """Serve a demo fashion shop on 127.0.0.1 (images on localhost) until Ctrl-C."""
    from garment.shop import ShopConfig, start_shop

    config = ShopConfig(images=images, n_products=products, port=port, latency_ms=latency,
                        fault_rate=faults, seed=seed, markup=markup, blind=blind)
    shop = start_shop(config)
    typer.echo(f"{len(shop.products)} products at {shop.url} (images on {shop.image_url}img/); "
               "Ctrl-C stops")
    try:
        while True:  # serving happens in the shop's thread; this only waits for Ctrl-C
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        shop.stop()

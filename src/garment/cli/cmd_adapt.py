"""``garment adapt``: fine-tune the catalogue's model on its own packshots, labelled by its own words."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from garment.cli import IMAGES_HELP, app, catalogue_option, is_quiet, model_option


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


@app.command("adapt")
def adapt_cmd(
    catalogue: Annotated[str, typer.Option(
        "--catalogue", help="Catalogue folder or postgresql:// URL (written by `garment scrape`).")],
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP, show_default=False)] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Base model to adapt: a model folder or shipped model name (default); "
                        "default: the shipped model.", show_default=False)] = None,
    labels_map: Annotated[Path | None, typer.Option(
        "--labels-map", exists=True, dir_okay=False,
        help="TOML file of the shop's own words (category or keyword -> class); docs/text-labels.md.")] = None,
    min_confidence: Annotated[float, typer.Option(
        "--min-confidence", min=0.0, max=1.0, help="Text labels below this confidence are not trained on.")] = 0.8,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimiser steps (batches).")] = 600,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out split and the training.")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="CPU threads for PyTorch.")] = 2,
) -> None:
    """Adapt a model to one shop: fine-tune it on the catalogue's packshots whose text names
    their class confidently (with Fashion-MNIST replay), measure it on held-out products and
    on Fashion-MNIST, write it under CATALOGUE/adapted/ with its card, and make it the
    catalogue's model (`garment classify --catalogue` then uses it). Refuses, saying how much
    there is, when too few products have a confident text label.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from garment.labels.adapt import AdaptConfig, adapt_catalogue

    config = AdaptConfig(min_confidence=min_confidence, steps=steps, seed=seed, threads=threads)
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=is_quiet() or not err.is_terminal) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task({"convert": "converting packshots", "train": "fine-tuning"}.get(
                    stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        r = adapt_catalogue(catalogue_option(catalogue, images), model_option(model), config, labels_map, progress)
    trained = sum(v for k, v in r.trained_on.items() if k != "other")
    err.print(f"adapted {r.base_model} on {trained} text-labelled packshots of {r.packshots} "
              f"(+{r.trained_on.get('other', 0)} 'other') in {r.seconds:.0f} s")
    err.print("  " + ", ".join(f"{k} {v}" for k, v in r.trained_on.items() if v))
    err.print(f"held-out products ({r.held_out}): {_pct(r.holdout_accuracy)} agree with their text "
              f"(base model {_pct(r.base_holdout_accuracy)}); Fashion-MNIST {_pct(r.fashion_mnist_accuracy)} "
              f"(base {_pct(r.base_fashion_mnist_accuracy)})")
    err.print(f"model: {r.model_dir} (now the catalogue's model; classify --catalogue {catalogue} to relabel)")

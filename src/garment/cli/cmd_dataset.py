"""``garment dataset``: a labelled catalogue as a training set (Fashion-MNIST IDX, image folders, Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from garment.cli import IMAGES_HELP, app, catalogue_option, model_option


@app.command("dataset")
def dataset_cmd(
    catalogue: Annotated[str, typer.Option(
        "--catalogue", help="Catalogue folder or postgresql:// URL, classified (`garment classify "
                            "--catalogue`).")] = "catalogue",
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP, show_default=False)] = None,
    out: Annotated[Path, typer.Option(
        "--out", help="Folder to write: new, empty, or a dataset written before (replaced).")] = Path("dataset"),
    fmt: Annotated[str, typer.Option(
        "--format", help="fmnist (Fashion-MNIST's IDX files, 28x28), imagefolder (DIR/split/class/"
                         "sha256.ext originals) or parquet (train.parquet, test.parquet; Hugging Face "
                         "`datasets` reads them).")] = "fmnist",
    test_fraction: Annotated[float, typer.Option(
        "--test-fraction", min=0.0, max=0.99, help="Share of each class in the test split.")] = 1 / 7,
    min_confidence: Annotated[float | None, typer.Option(
        "--min-confidence", min=0.0, max=1.0,
        help="Leave out machine labels less confident than this (a person's labels always pass).")] = None,
    only: Annotated[str | None, typer.Option(
        "--only", help="Keep only labels from this source: human, agree (image and text), text or image.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stratified split.")] = 0,
    model: Annotated[str | None, typer.Option(
        "--model", help="Whose labels: a model folder, a shipped model name (default) or a model "
                        "id stored in the catalogue (default: the latest classified).")] = None,
) -> None:
    """Write the catalogue's labelled packshots as a dataset: the ten classes ("other" and
    unlabelled left out), one image per distinct photo, a stratified train/test split, with a
    dataset card (README.md), sources.csv and dataset.json. `garment train --data-dir OUT`
    trains on the fmnist format."""
    from garment.dataset import write_dataset

    summary = write_dataset(catalogue_option(catalogue, images), out, fmt, test_fraction=test_fraction,
                            min_confidence=min_confidence, only=only, seed=seed, model=model_option(model, stored=True))
    sizes = ", ".join(f"{split} {sum(c.values())}" for split, c in summary.counts.items())
    sources = ", ".join(f"{s} {n}" for s, n in sorted(summary.sources.items()))
    typer.echo(f"{summary.total} images ({sizes}); labels from {sources}")
    if summary.excluded:
        typer.echo("left out: " + ", ".join(f"{k} {n}" for k, n in summary.excluded.items()))
    for f in summary.failures[:5]:
        typer.echo(f"  could not convert product {f['product_id']}: {f['error']}")
    typer.echo(f"wrote {summary.format} dataset to {summary.out} (card: {summary.out / 'README.md'})")

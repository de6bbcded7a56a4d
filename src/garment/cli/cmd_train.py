"""``garment train``: train a registered network on Fashion-MNIST into a model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from garment.cli import app, is_quiet
from garment.errors import GarmentError


@app.command("train")
def train_cmd(
    model: str = typer.Option("default", "--model", help="Network: default (garment's CPU net) or classic "
                              "(the original blog post's)."),
    preset_name: str | None = typer.Option(None, "--preset", help="Recipe: shipped (the default model as shipped) "
                                           "or classic (the blog post's: Adam 1e-3, no augmentation). Default: "
                                           "classic for --model classic, else shipped."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Training epochs."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Images per step."),
    lr: float | None = typer.Option(None, "--lr", min=0.0, help="Learning rate (peak of the one-cycle schedule)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed: the same seed and threads give the same weights."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for PyTorch."),
    train_limit: int | None = typer.Option(None, "--train-limit", min=1,
                                           help="Use only the first N training images (quick runs)."),
    out: Path = typer.Option(Path("runs/default"), "--out", help="Model folder to write."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Overwrite a model already in --out."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder with the Fashion-MNIST IDX files."),
) -> None:
    """Train on Fashion-MNIST; write model.safetensors, model.json, history.csv and a learning curve."""
    if not (resume or force) and any((out / name).exists() for name in ("model.json", "model.safetensors")):
        raise GarmentError(f"{out} already holds a model; pass --force to overwrite it, --resume to "
                           "continue its run, or another --out")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from garment.train import preset, train

    name = preset_name or ("classic" if model == "classic" else "shipped")
    overrides: dict[str, Any] = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, threads=threads,
                                     train_limit=train_limit, data_dir=str(data_dir) if data_dir else None)
    if model != "default" or preset_name is None:
        overrides["model"] = model
    cfg = preset(name, **overrides)
    typer.echo(f"training {cfg.model} ({name} recipe) for {cfg.epochs} epochs into {out}"
               + (" (resuming)" if resume else ""))
    columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(),
               TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[acc]:.3f} {task.fields[img_s]:.0f} img/s"),
               TimeElapsedColumn())
    with Progress(*columns, disable=is_quiet()) as bar:
        task = bar.add_task("train", total=None, epoch=0, loss=0.0, acc=0.0, img_s=0.0)

        def progress(d: dict[str, Any]) -> None:
            if "epoch_done" in d:
                e = d["epoch_done"]
                bar.console.print(f"epoch {e['epoch']:>3}  train loss {e['train_loss']:.4f} acc {e['train_acc']:.4f}"
                                  f"  val loss {e['val_loss']:.4f} acc {e['val_acc']:.4f}"
                                  f"  {e['images_per_s']:.0f} img/s  {e['seconds']:.0f} s")
            else:
                bar.update(task, total=d["steps"], completed=d["step"], epoch=d["epoch"], loss=d["loss"],
                           acc=d["acc"], img_s=d["img_s"])

        card = train(cfg, out, resume=resume, progress=progress)
    m = card.metrics
    typer.echo(f"Fashion-MNIST test accuracy {m['fashion_mnist_test_accuracy']:.4f}; "
               f"'other' threshold {card.other['threshold']:.3f}; model written to {out}")

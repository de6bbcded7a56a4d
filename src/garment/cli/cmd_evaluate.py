"""``garment evaluate``: accuracy on Fashion-MNIST's test set or on labelled shop photos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from garment.classify import IN_PROCESS_BELOW
from garment.cli import app, model_option


@app.command("evaluate")
def evaluate_cmd(
    labels: Annotated[Path | None, typer.Argument(
        help="Labels CSV: file (relative to the CSV's folder) and label_index "
             "(0-9, or -1 for a product that is none of the ten).")] = None,
    fashion_mnist: Annotated[bool, typer.Option(
        "--fashion-mnist", help="Evaluate on Fashion-MNIST's test set instead.")] = False,
    model: Annotated[str | None, typer.Option(
        "--model", help="Model folder or shipped model name (default); default: the shipped model.",
        show_default=False)] = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Write the metrics (and the config) here as JSON.")] = None,
    plots: Annotated[Path | None, typer.Option(
        "--plots", help="Write confusion.png (and, on photos, mistakes.png) here.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Folder holding Fashion-MNIST's IDX files.")] = None,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", help="Override the model's 'other' threshold.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", help="Worker processes; 0: one per CPU core (none, in this process, below "
        f"{IN_PROCESS_BELOW} images); 1: this process.")] = 0,
    backend: Annotated[str, typer.Option(
        "--backend", help="openvino (bf16 on CPUs with AVX-512 BF16 or AMX, else fp32), onnx (ONNX Runtime, "
                          "fp32), torch (fp32) or auto (the first installed).")] = "auto",
    record: Annotated[bool, typer.Option(
        "--record", help="Write the photo metrics into the model's model.json (metrics.real_photo).")] = False,
) -> None:
    """Evaluate a model on a labelled CSV of photos or (--fashion-mnist) on Fashion-MNIST's test set."""
    from garment.classify import ClassifyConfig
    from garment.evaluate import EvaluateConfig, run

    config = EvaluateConfig(labels=labels, fashion_mnist=fashion_mnist, data_dir=data_dir,
                            json_path=json_path, plots_dir=plots, record=record,
                            classify=ClassifyConfig(model_dir=model_option(model), threshold=threshold,
                                                    workers=workers, backend=backend))
    metrics = run(config)
    _print(metrics)
    if json_path:
        typer.echo(f"wrote {json_path}")
    if metrics.get("recorded_in"):
        typer.echo(f"recorded in {metrics['recorded_in']}")
    for p in metrics.get("plots", []):
        typer.echo(f"wrote {p}")


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _print(m: dict[str, Any]) -> None:
    if "accuracy" in m:
        typer.echo(f"Fashion-MNIST test ({m['n']} images): accuracy {_fmt(m['accuracy'])}")
    else:
        failed = f", {m['n_failed']} failed" if m["n_failed"] else ""
        typer.echo(f"{m['n']} photos ({m['n_in_scope']} of the ten classes, {m['n_other']} other"
                   f"{failed})")
        typer.echo(f"  in-scope accuracy  {_fmt(m['in_scope_accuracy'])}  (argmax over the ten)")
        typer.echo(f"  other AUROC        {_fmt(m['other_auroc'])}  (in-scope score, ten vs other)")
        typer.echo(f"  overall accuracy   {_fmt(m['overall_accuracy'])}  (final labels, threshold "
                   f"{m['threshold']:.4g})")
        typer.echo(f"  other recall       {_fmt(m['other_recall'])}  (share of 'other' rows labelled other)")
        typer.echo(f"  in-scope kept      {_fmt(m['in_scope_kept'])}  (share of the ten not labelled other)")
    typer.echo("  per class:")
    for name, acc in m["per_class"].items():
        typer.echo(f"    {name:<12} {_fmt(acc)}")

"""``garment classify``: label image files and folders with Fashion-MNIST classes or "other"."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from garment.classify import IN_PROCESS_BELOW
from garment.cli import IMAGES_HELP, app, catalogue_option, is_quiet, model_option
from garment.errors import GarmentError

if TYPE_CHECKING:
    from rich.console import Console

    from garment.classify import ClassifyConfig
    from garment.classify.catalogue import CatalogueClassified


@app.command("classify")
def classify_cmd(
    paths: Annotated[list[Path] | None, typer.Argument(
        exists=True, help="Image files or folders (searched recursively); or use --catalogue.",
        show_default=False)] = None,
    catalogue: Annotated[str | None, typer.Option(
        "--catalogue", help="Classify the packshots of this catalogue folder or postgresql:// URL "
                            "(written by `garment scrape`) into its predictions table instead; images "
                            "this model already labelled are skipped, and several processes on one "
                            "catalogue split its images.")] = None,
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP, show_default=False)] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Model folder or shipped model name (default); default: the shipped model.",
        show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the rows here; default: standard output.")] = None,
    json_summary: Annotated[bool, typer.Option(
        "--json", help="Print the summary as one JSON object on standard output (with image "
                       "PATHs, the rows then need --out).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="Output format: csv or jsonl.")] = "csv",
    threshold: Annotated[float | None, typer.Option(
        "--threshold", help="In-scope score below which the label is 'other'; "
                            "default: the threshold calibrated in the model file.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", help="Worker processes; 0: one per CPU core (none, in this process, below "
        f"{IN_PROCESS_BELOW} images); 1: this process.")] = 0,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Images per inference batch.")] = 256,
    backend: Annotated[str, typer.Option(
        "--backend", help="openvino (bf16 on CPUs with AVX-512 BF16 or AMX, else fp32), onnx (ONNX Runtime, "
                          "fp32), torch (fp32) or auto (the first installed).")] = "auto",
    labels_map: Annotated[Path | None, typer.Option(
        "--labels-map", exists=True, dir_okay=False,
        help="With --catalogue: a TOML file of the shop's own words (category or keyword -> class) "
             "that extends the built-in text vocabulary (docs/text-labels.md).")] = None,
    text: Annotated[bool, typer.Option(
        "--text/--no-text", help="With --catalogue: fuse each product's image label with what its "
                                 "text says (category, name, URL, description).")] = True,
) -> None:
    """Classify images: one row per image (path,label,label_index,confidence,top3,status,error).

    A file that cannot be read is an "error" row and counted; the exit status is 0 unless no
    image at all could be classified. With --catalogue, the labels go into the catalogue
    (keyed by image and model; `garment export` and `garment report` read them), the model is
    the catalogue's own when `garment adapt` made one, and each product's final label fuses
    the image's answer with its text's (label_source: image, text or agree).
    """
    if bool(paths) == (catalogue is not None):
        raise typer.BadParameter("give image PATHs or --catalogue DIR (one of the two)",
                                 param_hint="PATHS / --catalogue")
    if catalogue is not None and out is not None:
        raise typer.BadParameter("--out writes rows for image PATHs; with --catalogue the labels "
                                 "go into the catalogue (see `garment export`)",
                                 param_hint="--out")
    if json_summary and catalogue is None and out is None:
        raise typer.BadParameter("--json prints the summary on standard output: pass --out FILE "
                                 "for the rows", param_hint="--json")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from garment.classify import ClassifyConfig, classify

    config = ClassifyConfig(model_dir=model_option(model), threshold=threshold, workers=workers,
                            batch_size=batch_size, backend=backend)
    config.validate()
    err = Console(stderr=True)
    quiet = is_quiet()
    if catalogue is not None:
        _classify_catalogue(catalogue_option(catalogue, images), config, err, quiet, text, labels_map,
                            json_summary)
        return
    if labels_map is not None or not text:
        raise typer.BadParameter("text labels need product text: use them with --catalogue",
                                 param_hint="--labels-map / --no-text")
    assert paths
    stream = _open_out(out) if out else sys.stdout
    try:
        with Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                      console=err, transient=True,
                      # Rows on a terminal are progress enough; a bar would garble them.
                      disable=quiet or not err.is_terminal or (out is None and sys.stdout.isatty())) as bar:
            task = bar.add_task("classify", total=None, rate="")

            def progress(done: int, total: int | None) -> None:
                elapsed = bar.tasks[0].elapsed or 0.0
                rate = f"{done / elapsed:,.0f} img/s" if elapsed > 0 else ""
                bar.update(task, completed=done, total=total, rate=rate)

            summary = classify(paths, stream, config, fmt=fmt, progress=progress)
    finally:
        if out:
            stream.close()
    if json_summary:
        typer.echo(json.dumps({"images": summary.n, "classified": summary.ok, "failed": summary.failed,
                               "labels": dict(summary.labels), "errors": dict(summary.reasons),
                               "out": str(out)}))
    else:
        err.print(f"{summary.n} images: {summary.ok} classified, {summary.failed} failed")
        for label, count in sorted(summary.labels.items(), key=lambda kv: -kv[1]):
            err.print(f"  {label:<12} {count:>7}")
        for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
            err.print(f"  [red]error[/red] {reason:<14} {count:>7}")
        if out:
            err.print(f"wrote {out}")
    if summary.ok == 0:
        raise typer.Exit(1)


def _open_out(out: Path) -> TextIO:
    """``out`` opened for writing, its folder created first."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return out.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        raise GarmentError(f"cannot write {out} ({exc.strerror or exc}); pass --out a file "
                           "in a writable folder") from exc


def _classify_catalogue(catalogue: Path | str, config: ClassifyConfig, err: Console, quiet: bool,
                        text: bool, labels_map: Path | None, json_summary: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from garment.classify.catalogue import classify_catalogue
    from garment.store import describe

    with Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), console=err,
                  transient=True, disable=quiet or not err.is_terminal) as bar:
        task = bar.add_task("classify", total=None)
        result = classify_catalogue(
            catalogue, config=config, text=text, labels_map=labels_map,
            progress=lambda done, total: bar.update(task, completed=done, total=total))
    if json_summary:
        typer.echo(json.dumps({"catalogue": describe(catalogue), **result.as_dict()}))
    else:
        _print_catalogue_summary(catalogue, result, err, text)
    if result.images and result.images == result.failed:
        raise typer.Exit(1)


def _print_catalogue_summary(catalogue: Path | str, result: CatalogueClassified, err: Console, text: bool) -> None:
    from garment.store import describe

    err.print(f"{result.images} packshots in {describe(catalogue)}: {result.classified} classified by "
              f"{result.model_id}, {result.reused} already were, {result.failed} failed")
    if not text:
        for label, count in sorted(result.labels.items(), key=lambda kv: -kv[1]):
            err.print(f"  {label:<12} {count:>7}")
    else:
        src = result.sources
        err.print(f"{result.products} products, {result.text_labelled} with a text label; final labels from "
                  f"image {src['image']}, text {src['text']}, both agreeing {src['agree']} "
                  f"({result.conflicts} conflicts)")
        for label, count in sorted(result.final_labels.items(), key=lambda kv: -kv[1]):
            err.print(f"  {label:<12} {count:>7}")

"""CLI: the ``garment`` command, a thin Typer layer over the library.

Each command module registers its commands on ``app``; library errors become one-line
messages at this boundary (``GarmentError`` -> ``error: ...``, exit status 2).
"""

from __future__ import annotations

import sys

import typer

from garment import __version__
from garment.errors import GarmentError

app = typer.Typer(
    name="garment",
    help="Crawl an online fashion shop into a catalogue labelled with Fashion-MNIST classes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"garment {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Crawl an online fashion shop into a catalogue labelled with Fashion-MNIST classes."""


def _register() -> None:
    # Imported for their side effect: each module adds its commands to ``app``.
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{info.name}")


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``garment`` console script."""
    try:
        app(args=argv, prog_name="garment")
    except GarmentError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)

"""CLI: the ``garment`` command, a thin Typer layer over the library.

Each command module registers its commands on ``app``. Conventions every command shares,
set here once: ``-h``/``--help``; ``-v``/``-q``/``--log-level`` (before or after the command
name); exit statuses 0 ok, 1 runtime failure, 2 usage error, 130 interrupted; library
errors become one line on stderr at this boundary (``GarmentError`` -> ``error: ...``).
"""

from __future__ import annotations

import copy
import logging
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError

# Typer bundles its own Click: its exceptions are the ones raised while parsing.
from typer._click.globals import get_current_context
from typer.core import TyperGroup

from garment import __version__
from garment.errors import GarmentError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = (f"Exit status: {EXIT_OK} ok; {EXIT_FAILURE} runtime failure (one line on stderr "
              f"says why); {EXIT_USAGE} usage error (a bad option or argument); "
              f"{EXIT_INTERRUPTED} interrupted (Ctrl-C).")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: The options every command takes, copied from the root onto each command.
_SHARED = ("verbose", "quiet", "log_level")
_META = "garment.logging"


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a test runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """Record a logging option given on the command line and apply all given so far.

    Every shared option's callback runs (the root's, then the command's), so the last call
    sees the final choice; an option left at its default does not undo the root's."""
    if param.name == "log_level" and value is not None and value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    chosen: dict[str, Any] = ctx.meta.setdefault(_META, {})
    if param.name and value not in (None, False, 0):
        chosen[param.name] = value
    logger = logging.getLogger("garment")
    for h in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(h)
    if not chosen:  # Python's own default: warnings and errors, message only
        logger.setLevel(logging.NOTSET)
        return value
    if chosen.get("log_level"):
        level = getattr(logging, chosen["log_level"].upper())
    elif chosen.get("quiet"):
        level = logging.ERROR
    else:
        level = logging.DEBUG if chosen.get("verbose", 0) >= 2 else logging.INFO
    handler = _Handler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return value


def is_quiet() -> bool:
    """True when the running command was given ``-q`` or a log level of error or above:
    no progress bars then."""
    ctx = get_current_context(silent=True)
    chosen = {} if ctx is None else ctx.meta.get(_META, {})
    level = str(chosen.get("log_level") or "").lower()
    return bool(chosen.get("quiet")) or level in ("error", "critical")


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text.strip())


class _Group(TyperGroup):
    """The root group: shares the logging options with every command and turns failures
    into one line on stderr and the documented exit status."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        shared = [p for p in self.params if p.name in _SHARED]
        for command in (self.commands or {}).values():
            names = {n for p in command.params for n in (*p.opts, *p.secondary_opts)}
            for p in shared:
                if not names & {*p.opts, *p.secondary_opts}:
                    own = copy.copy(p)
                    own.expose_value = False  # handled by its callback, not the command
                    command.params.append(own)

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None,
                     **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            _usage_exit(exc)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            _usage_exit(exc)
        except GarmentError as exc:
            typer.echo(f"error: {_one_line(str(exc))}", err=True)
            raise typer.Exit(EXIT_FAILURE) from None
        except OSError as exc:  # a file or folder the run needed (disk full, permissions)
            typer.echo(f"error: {_one_line(str(exc))}", err=True)
            raise typer.Exit(EXIT_FAILURE) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None


def _usage_exit(exc: UsageError) -> None:
    path = exc.ctx.command_path if exc.ctx is not None else "garment"
    typer.echo(f"error: {_one_line(exc.format_message())} (see '{path} -h')", err=True)
    raise typer.Exit(EXIT_USAGE) from None


app = typer.Typer(
    cls=_Group,
    name="garment",
    help="Crawl an online fashion shop into a catalogue labelled with Fashion-MNIST classes.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"garment {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    verbose: Annotated[int, typer.Option(
        "--verbose", "-v", count=True, callback=_configure_logging, show_default=False,
        help="Log more to stderr: -v info, -vv debug.")] = 0,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", callback=_configure_logging,
        help="No progress bars; log only errors.")] = False,
    log_level: Annotated[str | None, typer.Option(
        "--log-level", callback=_configure_logging, show_default=False, metavar="LEVEL",
        help=f"Log level: {', '.join(LOG_LEVELS)} (overrides -v/-q).")] = None,
) -> None:
    """Crawl an online fashion shop into a catalogue labelled with Fashion-MNIST classes."""


def model_option(value: str | None, *, stored: bool = False) -> Any:
    """A ``--model`` value as the library takes it: a folder stays a folder, a shipped
    model's name (``default``) becomes its folder. With ``stored`` (commands that read a
    catalogue's labels) any other text is a model id stored in the catalogue, passed on
    as is; else it is a usage error naming the choices."""
    from garment.shipped import shipped_models

    if value is None:
        return None
    if Path(value).is_dir():
        return value if stored else Path(value)
    shipped = shipped_models()
    if value in shipped:
        return str(shipped[value]) if stored else shipped[value]
    if stored:
        return value
    raise typer.BadParameter(f"{value!r} is neither a model folder nor a shipped model "
                             f"({', '.join(shipped)})", param_hint="--model")


IMAGES_HELP = ("A PostgreSQL catalogue's files folder (its images/, models/, adapted/), reachable by "
               "every process using the catalogue; default: the one recorded when it was created.")


def catalogue_option(catalogue: str | Path, images: Path | None) -> Any:
    """``--catalogue``/``--out`` with ``--images`` as the library takes them: a folder, or a
    ``postgresql://`` URL carrying its files folder; ``--images`` with a folder is a usage error."""
    from garment.store import target

    try:
        return target(str(catalogue), images)
    except GarmentError as exc:
        raise typer.BadParameter(str(exc), param_hint="--images") from None


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
    except GarmentError as exc:  # raised outside a command (while the group starts)
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(EXIT_FAILURE)

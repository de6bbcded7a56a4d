"""``python -m garment`` and the ``garment`` command.

Light on purpose: classification's worker processes load the command's main module, and this
one does not import the CLI (Typer, Rich and every command) until the command runs.
"""


def main() -> None:
    from garment.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()

"""The `mosaic-it` command line: one Typer app, one module per stage registering its commands."""
from __future__ import annotations

import importlib
import sys

import typer

from mosaic_it.errors import MosaicItError

app = typer.Typer(
    help="Mosaic instruction tuning: validate, augment, train, evaluate, compare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines `register(app)`; adding a stage is adding its name here.
COMMAND_MODULES = ("data", "mosaic", "train", "evaluate")

for _name in COMMAND_MODULES:
    importlib.import_module(f"mosaic_it.cli.{_name}").register(app)


def main() -> None:
    try:
        # Without standalone mode click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
    except MosaicItError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 2
    except typer.Abort:
        typer.echo("aborted", err=True)
        code = 1
    except typer.TyperException as exc:
        # Usage errors (bad option values, unknown options): typer's click formats them itself.
        # Plain `click.ClickException` does not match them: typer ships its own copy of click.
        exc.show()
        code = exc.exit_code
    sys.exit(code if isinstance(code, int) else 0)

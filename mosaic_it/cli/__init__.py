"""The `mosaic-it` command line: one Typer app, one module per stage registering its commands."""
from __future__ import annotations

import gc
import importlib
import json
import os
import sys

import typer

from mosaic_it.errors import MosaicItError
from mosaic_it.logs import setup_cli_logging
from mosaic_it.redact import redact_text

app = typer.Typer(
    help="Mosaic instruction tuning: validate, augment, train, evaluate, compare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines `register(app)`; adding a stage is adding its name here.
COMMAND_MODULES = ("data", "mosaic", "train", "evaluate", "study", "plan")

for _name in COMMAND_MODULES:
    importlib.import_module(f"mosaic_it.cli.{_name}").register(app)


DEBUG_ENV = "MOSAIC_IT_DEBUG"  # =1: let unexpected errors show their traceback
INTERRUPTED = 130  # 128 + SIGINT, as shells report it
# Where the system's wording is cryptic for an output path that is taken by the wrong kind of entry.
OS_REASONS = {FileExistsError: "exists and is not a folder (a folder was needed here)",
              NotADirectoryError: "a part of this path is a file, not a folder",
              IsADirectoryError: "is a folder (a file was needed here)"}
# A command is one short-lived process that creates some million long-lived objects while it
# imports torch, transformers and mlflow. Python's default thresholds walk them all in repeated
# full collections, and once more at exit, for seconds a stage and nothing freed (mypy's CLI
# raises its threshold for the same reason). Cycles are still collected, just in larger batches.
GC_THRESHOLDS = (50_000, 20, 20)
# How each command picks up again after an interruption (every output is written atomically).
RESUME = {"train": "training resumes from its last checkpoint", "compare": "judging resumes from the finished verdicts",
          "study": "the study resumes at the first cell not done"}


def main() -> None:
    """Run the CLI; every failure ends in one line on stderr and an exit code, not a traceback:
    2 bad input or configuration, 1 an environment or internal failure, 130 interrupted."""
    setup_cli_logging()  # progress and each stage's summary line on stderr
    try:
        # Without standalone mode click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
        if code == INTERRUPTED:  # typer turns Ctrl-C into Exit(130)
            code = _fail(interrupted_message(sys.argv[1:2]), INTERRUPTED)
    except typer.TyperException as exc:
        # Usage errors (bad option values, unknown options): typer's click formats them itself.
        # Plain `click.ClickException` does not match them: typer ships its own copy of click.
        exc.show()
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt) as exc:
        if isinstance(exc, typer.Abort) and not isinstance(exc.__cause__, KeyboardInterrupt):
            code = _fail("aborted", 1)
        else:
            code = _fail(interrupted_message(sys.argv[1:2]), INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the one place that decides how failures look
        if os.environ.get(DEBUG_ENV) == "1" and not isinstance(exc, MosaicItError):
            raise
        code = _fail(*describe(exc))
    sys.exit(code if isinstance(code, int) else 0)


def entry() -> None:
    """The console script: `main` in a process of its own, which it ends (tests call `main`)."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        main()
    finally:
        gc.freeze()  # the exit's full collection would walk every object only to drop the process


def describe(exc: Exception) -> tuple[str, int]:
    """The one-line message and exit code for an exception that reached the top."""
    if isinstance(exc, MosaicItError):
        return f"error: {exc}", 2
    if isinstance(exc, OSError):
        where = exc.filename2 if exc.filename2 is not None else exc.filename  # a rename names its target
        reason = OS_REASONS.get(type(exc), exc.strerror or str(exc))
        return f"error: {str(where) + ': ' if where is not None else ''}{reason}", 1
    if isinstance(exc, UnicodeError):
        return f"error: text that is not valid UTF-8 ({exc})", 2
    if isinstance(exc, json.JSONDecodeError):
        return f"error: not valid JSON at line {exc.lineno}: {exc.msg}", 2
    return (f"internal error: {type(exc).__name__}: {exc} (a bug; rerun with {DEBUG_ENV}=1 for the traceback "
            "and report it)"), 1


def interrupted_message(command: list[str]) -> str:
    name = command[0] if command else "the command"
    how = RESUME.get(name, "it starts again from its inputs")
    return (f"interrupted: `mosaic-it {name}` stopped before it finished; outputs already written are complete "
            f"(written atomically), and rerunning the same command picks up ({how})")


def _fail(message: str, code: int) -> int:
    typer.echo(redact_text(message.splitlines()[0] if message else message), err=True)
    return code

"""Log output of the `mosaic-it` command: the core's lines (progress, each stage's summary) on
stderr, without third-party noise that repeats on every run.

Known third-party warnings are silenced where they arise, by exact message and module (see
tracking.log_jsonl_dataset, mlmodel/log.py, train/model.py), so anything new still shows.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

# Third-party INFO loggers that repeat lines on every run with nothing to act on.
QUIET_LOGGERS = ("mlflow.system_metrics",)
# Off a terminal a progress bar per file download or weight load is noise in the log.
NO_BARS_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def quiet_third_party() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not sys.stderr.isatty():
        for key, value in NO_BARS_ENV.items():
            os.environ.setdefault(key, value)


class CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (a redirect, a test's capture)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_cli_logging(level: int = logging.INFO) -> None:
    """`mosaic_it.*` records as plain lines on stderr (installed once; the CLI's root logger has no
    handler of its own, so nothing prints twice)."""
    core = logging.getLogger("mosaic_it")
    if not any(isinstance(h, CurrentStderr) for h in core.handlers):
        handler = CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        core.addHandler(handler)
    core.setLevel(level)
    quiet_third_party()


@contextlib.contextmanager
def peft_on_transformers_v5() -> Iterator[None]:
    """peft reads `is_gradient_checkpointing`, which transformers 5 deprecates with a FutureWarning
    on every adapter it wraps or loads; only that warning is dropped."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning,
                                module="transformers")
        yield

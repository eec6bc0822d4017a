"""Core progress and log lines on the Prefect flow-run page.

`with prefect_progress():` around a core call routes every `mosaic_it.progress` reporter inside
it to the task's run logger and to one progress artifact per stage (a moving bar on the flow-run
page), and sends the core library's own log records (`mosaic_it.*`, e.g. each stage's summary
line) to the run's logs the way `PREFECT_LOGGING_EXTRA_LOGGERS` would.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger

from mosaic_it.logs import quiet_third_party
from mosaic_it.progress import Snapshot, reporting_to


def artifact_key(desc: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = "".join(c if c.isalnum() else "-" for c in desc.lower())
    return "progress-" + "-".join(filter(None, slug.split("-")))


class PrefectSink:
    """Receives snapshots: one run-logger line each, and one progress artifact per stage name."""

    def __init__(self) -> None:
        self.logger = get_run_logger()
        self.artifacts: dict[str, Any] = {}

    def __call__(self, snapshot: Snapshot) -> None:
        self.logger.info(snapshot.line())
        percent = 100.0 * (snapshot.fraction if snapshot.fraction is not None else float(snapshot.final))
        if snapshot.desc not in self.artifacts:
            self.artifacts[snapshot.desc] = create_progress_artifact(
                progress=percent, key=artifact_key(snapshot.desc), description=snapshot.line())
        else:
            update_progress_artifact(self.artifacts[snapshot.desc], progress=percent, description=snapshot.line())

    def summary(self, line: str) -> None:
        """The one line a stage logs when done: what it wrote and where."""
        self.logger.info(line)


@contextlib.contextmanager
def core_logs_to_run() -> Iterator[None]:
    """Give the `mosaic_it` logger Prefect's API handler while inside a run (outside one that handler
    would warn on every core line), so core lines reach the flow-run page."""
    core = logging.getLogger("mosaic_it")
    added = [h for h in logging.getLogger("prefect.extra").handlers if h not in core.handlers]
    level = core.level
    if level == logging.NOTSET:
        core.setLevel(logging.INFO)
    for handler in added:
        core.addHandler(handler)
    try:
        yield
    finally:
        for handler in added:
            core.removeHandler(handler)
        core.setLevel(level)


@contextlib.contextmanager
def prefect_progress() -> Iterator[PrefectSink]:
    quiet_third_party()
    sink = PrefectSink()
    with core_logs_to_run(), reporting_to(sink):
        yield sink

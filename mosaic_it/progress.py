"""Progress of a long stage, shown where the user is looking.

Every long loop reports through one reporter:

    from mosaic_it.progress import progress

    with progress(total=len(prompts), desc="generate ifeval", unit="prompt") as bar:
        for batch in batches:
            ...
            bar.update(len(batch))
            bar.set_postfix(loss=0.91)  # optional, shown after the rate

Where it shows: a tqdm bar when stderr is a terminal; otherwise a log line on the
`mosaic_it.progress` logger (done/total, rate, ETA) at the start, every `every_s` seconds and at
the end. An orchestrator can route those updates elsewhere without the core knowing it: inside
`with reporting_to(sink):` every reporter calls `sink(snapshot)` at those same moments instead of
writing the log line (tasks/progress.py injects a Prefect sink: run-logger lines plus a progress
artifact per stage). `MOSAIC_IT_PROGRESS_EVERY_S` sets the default interval.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("mosaic_it.progress")

DEFAULT_EVERY_S = 30.0


@dataclass(frozen=True)
class Snapshot:
    """Where a stage stands: what a sink receives."""

    desc: str
    unit: str
    done: int
    total: int | None
    elapsed_s: float
    postfix: dict[str, str] = field(default_factory=dict)
    final: bool = False

    @property
    def rate(self) -> float | None:
        return self.done / self.elapsed_s if self.elapsed_s > 0 and self.done else None

    @property
    def fraction(self) -> float | None:
        return min(self.done / self.total, 1.0) if self.total else None

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.rate is None:
            return None
        return max(self.total - self.done, 0) / self.rate

    def line(self) -> str:
        """`generate: 12/40 prompt (30%), 0.52 prompt/s, ETA 54s, loss=1.2`."""
        text = f"{self.desc}: {self.done}"
        if self.total is not None:
            text += f"/{self.total} {self.unit} ({self.fraction:.0%})"
        else:
            text += f" {self.unit}"
        if self.rate is not None:
            text += f", {self.rate:.3g} {self.unit}/s"
        if self.final:
            text += f", done in {_duration(self.elapsed_s)}"
        elif self.eta_s is not None:
            text += f", ETA {_duration(self.eta_s)}"
        return text + "".join(f", {k}={v}" for k, v in self.postfix.items())


Sink = Callable[[Snapshot], None]
_SINKS: contextvars.ContextVar[tuple[Sink, ...]] = contextvars.ContextVar("mosaic_it_progress_sinks", default=())


@contextlib.contextmanager
def reporting_to(*sinks: Sink) -> Iterator[None]:
    """Within this block, every reporter sends its snapshots to `sinks` instead of the log."""
    token = _SINKS.set(_SINKS.get() + sinks)
    try:
        yield
    finally:
        _SINKS.reset(token)


def log_sink(snapshot: Snapshot) -> None:
    logger.info(snapshot.line())


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _every_s() -> float:
    try:
        return float(os.environ.get("MOSAIC_IT_PROGRESS_EVERY_S", DEFAULT_EVERY_S))
    except ValueError:
        return DEFAULT_EVERY_S


class Progress:
    """One stage's counter; see the module docstring. Closing twice is harmless."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", every_s: float | None = None,
                 terminal: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = 0
        self.every_s = _every_s() if every_s is None else every_s
        self._clock = clock
        self._started = self._last = clock()
        self._postfix: dict[str, str] = {}
        self._closed = False
        self._sinks = _SINKS.get() or (() if _is_terminal(terminal) else (log_sink,))
        self._bar = _tqdm(total, desc, unit) if _is_terminal(terminal) else None
        self._emit(final=False)

    def snapshot(self, final: bool = False) -> Snapshot:
        return Snapshot(self.desc, self.unit, self.done, self.total, self._clock() - self._started,
                        dict(self._postfix), final)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._clock() - self._last >= self.every_s:
            self._emit(final=False)

    def set_postfix(self, **values: Any) -> None:
        self._postfix = {k: f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in values.items()}
        if self._bar is not None:
            self._bar.set_postfix(self._postfix, refresh=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        self._emit(final=True)

    def _emit(self, final: bool) -> None:
        self._last = self._clock()
        snapshot = self.snapshot(final)
        for sink in self._sinks:
            try:
                sink(snapshot)
            except Exception as exc:  # a display problem must never stop the work it displays
                logger.warning("progress sink failed: %s", exc)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(total: int | None, desc: str, unit: str = "it", every_s: float | None = None,
             terminal: bool | None = None) -> Progress:
    return Progress(total, desc, unit, every_s, terminal)


def _is_terminal(terminal: bool | None) -> bool:
    return sys.stderr.isatty() if terminal is None else terminal


def _tqdm(total: int | None, desc: str, unit: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)

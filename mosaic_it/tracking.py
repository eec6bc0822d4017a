"""MLflow for every stage: one parent run per pipeline run, one nested run per stage.

`stage_run` opens a run nested under whatever run is active in this process, or under the run
whose id is in $MOSAIC_IT_PARENT_RUN_ID (how a flow hands its parent to CLI subprocesses); with
neither, the stage run is top-level. An exception inside marks the run FAILED and propagates; an
interruption (Ctrl-C, SIGTERM, a Prefect cancellation) marks it KILLED.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mosaic_it import mlflow_store
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.redact import redact_text

PARENT_RUN_ENV = "MOSAIC_IT_PARENT_RUN_ID"
# Tags every stage run opened inside `scoped_tags` carries (a study cell's seed and arm).
_SCOPED_TAGS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("mosaic_it_scoped_tags", default={})
MAX_PARAM_CHARS = 500  # MLflow accepts 6000; long lists are useless as params beyond this
SECRET_WORDS = {"secret", "secrets", "token", "password", "passwd", "key", "apikey", "credential", "credentials"}
_URI_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def is_secret(key: str) -> bool:
    """True when a word of the key names a secret (`hf_token`, `api_key`; not `max_tokens`)."""
    words = re.split(r"[^a-z0-9]+", key.lower())
    return any(word in SECRET_WORDS for word in words)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"a.b": "value"}, secrets dropped, credentials in URIs and long values cut."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if is_secret(str(key)):
            continue
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
            continue
        text = redact_text(_URI_USERINFO.sub("***@", str(value)))  # also ?api_key=... in URLs
        if len(text) > MAX_PARAM_CHARS:
            text = text[: MAX_PARAM_CHARS - 3] + "..."
        flat[name] = text
    return flat


def file_md5(path: str | Path) -> str:
    """The md5 DVC records for a file (DVC 3 hashes the raw bytes)."""
    digest = hashlib.md5()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _experiment_id(cfg: TrackingConfig) -> str:
    return mlflow_store.experiment_id(cfg.experiment_name, cfg.artifact_location)


@contextlib.contextmanager
def stage_run(stage: str, cfg: TrackingConfig, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, str] | None = None, system_metrics: bool = False,
              continue_run_id: str | None = None) -> Iterator[Any]:
    """Yields the active MLflow run for this stage, or None when tracking is disabled.

    `continue_run_id`: a run of this stage left RUNNING by a killed process; it is continued
    (same id, one metric history) instead of opening a new run. Ignored if that run has ended.

    `system_metrics`: this stage is worth MLflow's CPU/GPU/memory sampling when
    `tracking.system_metrics` is on (train and evaluate are)."""
    if not cfg.enabled:
        yield None
        return
    import mlflow

    uri = mlflow_store.absolute_uri(cfg.tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow_store.prepare_store(uri)
    continued = mlflow_store.unfinished_run(continue_run_id)
    parent = mlflow.active_run()
    parent_id = parent.info.run_id if parent is not None else os.environ.get(PARENT_RUN_ENV) or None
    if parent is not None:
        experiment_id = parent.info.experiment_id
    elif parent_id:
        experiment_id = mlflow.MlflowClient().get_run(parent_id).info.experiment_id
    else:
        experiment_id = _experiment_id(cfg)
    from mosaic_it.lineage import run_context_tags

    run = mlflow.start_run(run_id=continued.info.run_id if continued else None,
                           run_name=stage, experiment_id=experiment_id, nested=parent is not None,
                           parent_run_id=parent_id if parent is None else None,
                           log_system_metrics=True if system_metrics and cfg.system_metrics else None,
                           tags={"mosaic_it.stage": stage, **run_context_tags(), **_SCOPED_TAGS.get(), **(tags or {})})
    try:
        with _sigterm_raises():
            if params and not continued:  # a continued run has its params already
                log_params(params)
            yield run
    except BaseException as exc:
        mlflow.end_run(status="KILLED" if interrupted(exc) else "FAILED")
        raise
    mlflow.end_run(status="FINISHED")


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM as SystemExit while a run is open, so `kill` ends the run KILLED instead of leaving it
    RUNNING. Only where nobody else handles SIGTERM (Prefect installs its own) and only in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def interrupted(exc: BaseException) -> bool:
    """Whether the run was stopped from outside (Ctrl-C, SIGTERM, a cancellation) rather than failing."""
    return isinstance(exc, (KeyboardInterrupt, SystemExit)) or type(exc).__name__ in ("Cancelled", "CancelledError", "TerminationSignal")


@contextlib.contextmanager
def scoped_tags(tags: Mapping[str, str]) -> Iterator[None]:
    """Every stage run opened inside carries `tags` (a study cell's seed and arm)."""
    token = _SCOPED_TAGS.set({**_SCOPED_TAGS.get(), **tags})
    try:
        yield
    finally:
        _SCOPED_TAGS.reset(token)


def log_params(params: Mapping[str, Any]) -> None:
    import mlflow

    items = list(flatten(params).items())
    for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        mlflow.log_params(dict(items[start:start + 100]))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_artifacts(path: str | Path, artifact_path: str | None = None) -> None:
    import mlflow

    path = Path(path)
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    elif path.exists():
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_jsonl_dataset(path: str | Path, name: str, context: str = "training") -> str:
    """Log a JSONL file as the run's input, with its DVC md5 as digest; returns the md5."""
    import mlflow
    import pandas as pd

    md5 = file_md5(path)
    frame = pd.read_json(path, lines=Path(path).suffix == ".jsonl", dtype=False)
    keep = [c for c in ("instruction", "input", "output", "count") if c in frame.columns]
    with warnings.catch_warnings():  # a local path matches two equivalent MLflow source types
        warnings.filterwarnings("ignore", message="The specified dataset source", category=UserWarning)
        # The schema is only a record of the file (`count` is never missing); nothing is served from it.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column",
                                category=UserWarning, module="mlflow")
        dataset = mlflow.data.from_pandas(frame[keep], source=str(Path(path).resolve()), name=name, digest=md5)
        mlflow.log_input(dataset, context=context)
    mlflow.set_tag(f"dataset.{name}.md5", md5)
    return md5

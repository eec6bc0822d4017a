"""MLflow for every stage: one parent run per pipeline run, one nested run per stage.

`stage_run` opens a run nested under whatever run is active in this process, or under the run
whose id is in $MOSAIC_IT_PARENT_RUN_ID (how a flow hands its parent to CLI subprocesses); with
neither, the stage run is top-level. An exception inside marks the run FAILED and propagates.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.redact import redact_text

PARENT_RUN_ENV = "MOSAIC_IT_PARENT_RUN_ID"
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
    import mlflow

    experiment = mlflow.get_experiment_by_name(cfg.experiment_name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(cfg.experiment_name, artifact_location=cfg.artifact_location)


@contextlib.contextmanager
def stage_run(stage: str, cfg: TrackingConfig, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """Yields the active MLflow run for this stage, or None when tracking is disabled."""
    if not cfg.enabled:
        yield None
        return
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking_uri)
    parent = mlflow.active_run()
    parent_id = parent.info.run_id if parent is not None else os.environ.get(PARENT_RUN_ENV) or None
    if parent is not None:
        experiment_id = parent.info.experiment_id
    elif parent_id:
        experiment_id = mlflow.MlflowClient().get_run(parent_id).info.experiment_id
    else:
        experiment_id = _experiment_id(cfg)
    run = mlflow.start_run(run_name=stage, experiment_id=experiment_id, nested=parent is not None,
                           parent_run_id=parent_id if parent is None else None,
                           tags={"mosaic_it.stage": stage, **(tags or {})})
    try:
        if params:
            log_params(params)
        yield run
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


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
        dataset = mlflow.data.from_pandas(frame[keep], source=str(Path(path).resolve()), name=name, digest=md5)
    mlflow.log_input(dataset, context=context)
    mlflow.set_tag(f"dataset.{name}.md5", md5)
    return md5

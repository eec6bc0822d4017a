"""What every mosaic-it task shares: I/O retries, file-content cache keys, artifacts linked to MLflow.

Nothing here knows about a particular stage; each task module is a few lines over its core function.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import mlflow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from mosaic_it.errors import MosaicItError

IO_RETRIES = 2
IO_RETRY_DELAY_S = 2


def retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient I/O failures only: a MosaicItError is the user's to fix, a retry cannot help."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError) and not isinstance(exc, MosaicItError)


def hash_paths(paths: Iterable[str | Path]) -> str:
    """Content hash of files and directory trees (relative names included); missing paths hash as absent."""
    digest = hashlib.sha256()
    for root in map(Path, paths):
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path).encode())
            if path.is_file():
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            else:
                digest.update(b"<absent>")
    return digest.hexdigest()


def file_cache_key(
    inputs: Callable[[Any], list[str]], outputs: Callable[[Any], list[str]]
) -> Callable[[Any, dict[str, Any]], str | None]:
    """A Prefect `cache_key_fn` keyed on the config and the content of the files it reads.

    The task's single argument `cfg` is its config section. A cached result is only reused while
    the stage's outputs are still on disk: when one is missing the key is None and the task runs.
    """

    def key(context: Any, arguments: dict[str, Any]) -> str | None:
        cfg = arguments["cfg"]
        if not all(Path(p).exists() for p in outputs(cfg)):
            return None
        config = cfg.model_dump_json() if isinstance(cfg, BaseModel) else json.dumps(cfg, sort_keys=True)
        return f"{context.task.name}-{hash_paths(inputs(cfg))}-{hashlib.sha256(config.encode()).hexdigest()[:16]}"

    return key


def mlflow_link() -> str:
    """Markdown naming the active MLflow run (id, experiment, and a UI address where one is known)."""
    run = mlflow.active_run()
    if run is None:
        return "_No MLflow run was active._"
    uri = mlflow.get_tracking_uri()
    exp, rid = run.info.experiment_id, run.info.run_id
    if uri.startswith(("http://", "https://")):
        where = f"[open in MLflow]({uri.rstrip('/')}/#/experiments/{exp}/runs/{rid})"
    else:
        where = f"store `{uri}` (browse with `mlflow ui --backend-store-uri {uri}`)"
    return f"MLflow run `{rid}` (experiment {exp}): {where}"


def _artifact_key(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_(empty)_"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def publish(title: str, rows: list[dict[str, Any]] | dict[str, Any]) -> None:
    """A markdown artifact: the table (a dict becomes name/value rows) under a link to the MLflow run."""
    if isinstance(rows, dict):
        rows = [{"name": k, "value": v} for k, v in rows.items()]
    link = mlflow_link()
    create_markdown_artifact(
        markdown=f"# {title}\n\n{link}\n\n{markdown_table(rows)}\n",
        key=_artifact_key(title),
        description=link,
    )


def report_dict(report: Any) -> dict[str, Any]:
    """A core report (pydantic model, dataclass or dict) as a flat-enough dict for a table."""
    if isinstance(report, BaseModel):
        return report.model_dump(mode="json")
    if hasattr(report, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(report)
    return dict(report)

"""What every mosaic-it task shares: I/O retries, file-content cache keys, artifacts linked to MLflow.

Nothing here knows about a particular stage; each task module is a few lines over its core function.
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import mlflow
from prefect import task
from prefect.artifacts import create_markdown_artifact

from mosaic_it.errors import MosaicItError

IO_RETRIES = 2
IO_RETRY_DELAY_S = 2


def retry_on_io(stage: Any, task_run: Any, state: Any) -> bool:
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


@functools.lru_cache(maxsize=1)
def core_source_hash() -> str:
    """The core library's source: a fix in mosaic_it/ must not be hidden behind a cached result."""
    import mosaic_it.errors

    package = Path(mosaic_it.errors.__file__).parent
    return hash_paths(sorted(package.rglob("*.py")))[:16]


def content_key(inputs: Callable[[Any], list[str]]) -> Callable[[Any, dict[str, Any]], str]:
    """A Prefect `cache_key_fn`: the task's `cfg` argument (its config section), the content of the
    files it reads and the core library's source. The working directory is part of the key too:
    outputs are relative paths."""

    def key(context: Any, arguments: dict[str, Any]) -> str:
        cfg = arguments["cfg"]
        setting = f"{Path.cwd()}\n{cfg.model_dump_json()}\n{core_source_hash()}"
        return f"{context.task.name}-{hash_paths(inputs(cfg))}-{hashlib.sha256(setting.encode()).hexdigest()[:16]}"

    return key


def cached_stage(name: str, inputs: Callable[[Any], list[str]], outputs: Callable[[Any], list[str]]):
    """Decorator: a Prefect task with I/O retries, cached on its config and input content.

    A cached result is only worth reusing while the stage's outputs are on disk, so a call that
    finds one missing runs the task with `refresh_cache` and stores the fresh result in its place.
    The Prefect task itself stays reachable as `.task`.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        stage = task(fn, name=name, retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S,
                     retry_condition_fn=retry_on_io, cache_key_fn=content_key(inputs), persist_result=True)

        @functools.wraps(fn)
        def run(cfg: Any, *args: Any, **kwargs: Any) -> Any:
            missing = not all(Path(p).exists() for p in outputs(cfg))
            return (stage.with_options(refresh_cache=True) if missing else stage)(cfg, *args, **kwargs)

        run.task = stage  # type: ignore[attr-defined]
        return run

    return wrap


def mlflow_link(run_id: str | None = None) -> str:
    """Markdown naming an MLflow run (default: the active one), with its UI address where known."""
    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            return "_No MLflow run to link (tracking is off, or the stage ran outside a flow)._"
        run_id, exp = active.info.run_id, active.info.experiment_id
    else:
        exp = mlflow.MlflowClient().get_run(run_id).info.experiment_id
    uri = mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        where = f"[open in MLflow]({uri.rstrip('/')}/#/experiments/{exp}/runs/{run_id})"
    else:
        where = f"store `{uri}`; browse with `mlflow ui --backend-store-uri {uri}`"
    return f"MLflow run `{run_id}` (experiment {exp}): {where}"


def child_run_id(stage: str, arm: str | None = None) -> str | None:
    """The newest stage run (by `mosaic_it.stage` / `mosaic_it.arm` tags) nested under the active run.

    Core functions open and close their own stage runs; this finds the one that just closed, so an
    artifact can link to it. None without an active parent run (tracking off, or no flow).
    """
    parent = mlflow.active_run()
    if parent is None:
        return None
    clauses = [f"tags.mlflow.parentRunId = '{parent.info.run_id}'", f"tags.`mosaic_it.stage` = '{stage}'"]
    if arm is not None:
        clauses.append(f"tags.`mosaic_it.arm` = '{arm}'")
    found = mlflow.search_runs(experiment_ids=[parent.info.experiment_id], filter_string=" and ".join(clauses),
                               order_by=["attributes.start_time DESC"], max_results=1, output_format="list")
    return found[0].info.run_id if found else None


def _artifact_key(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]] | dict[str, Any]) -> str:
    """Rows as a markdown table; a dict becomes name/value rows."""
    if isinstance(rows, dict):
        rows = [{"name": k, "value": v} for k, v in rows.items()]
    if not rows:
        return "_(empty)_"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def publish(title: str, body: str | list[dict[str, Any]] | dict[str, Any], run_id: str | None = None) -> str:
    """A Prefect markdown artifact under a link to an MLflow run (default: the active one).

    `body` is markdown, a list of rows, or a dict (shown as name/value rows).
    """
    if not isinstance(body, str):
        body = markdown_table(body)
    link = mlflow_link(run_id)
    markdown = f"# {title}\n\n{link}\n\n{body}\n"
    create_markdown_artifact(markdown=markdown, key=_artifact_key(title), description=link)
    return markdown


def numeric(values: dict[str, Any]) -> dict[str, float]:
    """The top-level numbers of a report, for MLflow metrics."""
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

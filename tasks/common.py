"""What every mosaic-it task shares: I/O retries, file-content cache keys, artifacts linked to MLflow.

Nothing here knows about a particular stage; each task module is a few lines over its core function.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import mlflow
from prefect import task
from prefect.artifacts import create_markdown_artifact

from mosaic_it.errors import MosaicItError
from mosaic_it.hashing import hash_paths

IO_RETRIES = 2
IO_RETRY_DELAY_S = 2


def retry_on_io(stage: Any, task_run: Any, state: Any) -> bool:
    """Retry transient I/O failures only: a MosaicItError is the user's to fix, a retry cannot help."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError) and not isinstance(exc, MosaicItError)


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


@dataclass(frozen=True)
class StageOutput:
    """What a cached stage stores: its result, what its output files held when it finished, and
    the MLflow run that logged it (so a cached report can still link to it)."""

    value: Any
    output_hashes: dict[str, str]
    run_id: str | None


def output_hashes(paths: list[str]) -> dict[str, str]:
    return {path: hash_paths([path]) for path in paths}


Report = Callable[[Any, Any, "str | None", bool], None]  # (config, result, MLflow run id, cached?)


def cached_stage(name: str, inputs: Callable[[Any], list[str]], outputs: Callable[[Any], list[str]],
                 report: Report | None = None):
    """Decorator: a Prefect task with I/O retries, cached on its config and input content.

    A cached result is reused only while the stage's outputs still hold what that run wrote: the
    result stores their content hashes, and a call that finds an output missing or different (say,
    overwritten by a run with other parameters) runs the task with `refresh_cache` and stores the
    fresh result in its place. `report(cfg, result, run_id, cached)` publishes the stage's artifact,
    for a fresh result and for a reused one alike. Calls return the stage's own result (or, with
    `return_state=True`, the Prefect state); the Prefect task itself stays reachable as `.task`.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def produce(cfg: Any, *args: Any, **kwargs: Any) -> StageOutput:
            value = fn(cfg, *args, **kwargs)
            done = StageOutput(value, output_hashes(outputs(cfg)), child_run_id(name))
            if report is not None:
                report(cfg, value, done.run_id, False)
            return done

        stage = task(produce, name=name, retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S,
                     retry_condition_fn=retry_on_io, cache_key_fn=content_key(inputs), persist_result=True)
        fresh = stage.with_options(refresh_cache=True)

        @functools.wraps(fn)
        def run(cfg: Any, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
            missing = not all(Path(p).exists() for p in outputs(cfg))
            state = (fresh if missing else stage)(cfg, *args, return_state=True, **kwargs)
            if state.name == "Cached":
                stored: StageOutput = state.result()
                if stored.output_hashes != output_hashes(outputs(cfg)):
                    state = fresh(cfg, *args, return_state=True, **kwargs)
                elif report is not None:
                    report(cfg, stored.value, stored.run_id, True)
            return state if return_state else state.result().value

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


def readable(value: Any) -> str:
    """A number as a person reads it: whole numbers with thousands separators, others to 4 digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else readable(value) if isinstance(value, (int, float)) else json.dumps(
        value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]] | dict[str, Any]) -> str:
    """Rows as a markdown table; a dict becomes name/value rows; nothing at all becomes ""."""
    if isinstance(rows, dict):
        rows = [{"name": k, "value": v} for k, v in rows.items()]
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


MAX_EMBEDDED_IMAGE_BYTES = 512 * 1024


def image_markdown(path: Path, artifact_path: str, run_id: str | None) -> str:
    """An image for an artifact: served by the MLflow tracking server when there is one (the file
    the run logged as `artifact_path`), else embedded in the artifact itself."""
    uri = mlflow.get_tracking_uri()
    if run_id and uri.startswith(("http://", "https://")):
        return f"![{path.name}]({uri.rstrip('/')}/get-artifact?path={quote(artifact_path)}&run_uuid={run_id})"
    if path.is_file() and path.stat().st_size <= MAX_EMBEDDED_IMAGE_BYTES:
        data = base64.b64encode(path.read_bytes()).decode()
        return f"![{path.name}](data:image/png;base64,{data})"
    return f"`{path}` (run artifact `{artifact_path}`)"


def publish(title: str, body: str | list[dict[str, Any]] | dict[str, Any], run_id: str | None = None,
            cached: bool = False, images: dict[str, Path] | None = None) -> str:
    """A Prefect markdown artifact under one link to an MLflow run (default: the active one).

    `body` is markdown, a list of rows, or a dict (shown as name/value rows); empty tables are left
    out. `images` maps an image's MLflow artifact path to its local file. A `cached` report says
    that the stage was reused, and links the run that produced the result.
    """
    if not isinstance(body, str):
        body = markdown_table(body)
    if run_id is None and not cached and mlflow.active_run() is not None:
        run_id = mlflow.active_run().info.run_id
    link = mlflow_link(run_id) if run_id or not cached else "_Produced without an MLflow run (tracking was off)._"
    note = ("_Cached: settings, inputs and outputs are unchanged since the run above, so this stage did "
            "not run again._\n\n" if cached else "")
    pictures = "".join(f"\n\n{image_markdown(Path(p), name, run_id)}" for name, p in (images or {}).items())
    heading = f"{title} (cached)" if cached else title
    markdown = f"# {heading}\n\n{link}\n\n{note}{body}{pictures}\n"
    create_markdown_artifact(markdown=markdown, key=_artifact_key(title), description=heading)
    return markdown


def numeric(values: dict[str, Any]) -> dict[str, float]:
    """The top-level numbers of a report, for MLflow metrics."""
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def stage_metrics(stage: str, values: dict[str, Any], cfg: Any) -> dict[str, float]:
    """A report's top-level numbers as `<stage>/<name>` metrics, leaving out the settings it echoes
    (those are the run's params already)."""
    return {f"{stage}/{k}": v for k, v in numeric(values).items() if k not in type(cfg).model_fields}

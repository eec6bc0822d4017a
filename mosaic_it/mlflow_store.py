"""The MLflow store, made safe for several processes at once, and runs continued after a kill.

A fresh sqlite store migrates its schema on first use; two processes doing that at once crash
one of them ("duplicate column name"). The first use of a sqlite store in each process therefore
happens under a file lock beside the database, so exactly one process migrates it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mosaic_it.locks import file_lock

_READY: set[str] = set()


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def absolute_uri(uri: str) -> str:
    """A relative sqlite URI (the default `sqlite:///mlflow.db`) pinned to the current directory.

    MLflow keeps one database engine per URI string for the life of the process, so a relative
    URI would go on reading and writing the database of whichever directory first used it after
    the process changed directory (seen in the test suite: a study flow run in-process wrote to,
    and read back, another scratch repo's store)."""
    db = sqlite_path(uri)
    if db is None or db.is_absolute() or str(db) in ("", ":memory:"):
        return uri
    query = uri.partition("?")[2]
    return f"sqlite:///{db.resolve()}" + (f"?{query}" if query else "")


def prepare_store(uri: str) -> None:
    """Create and migrate the tracking store once, under a lock; a no-op after the first call."""
    if uri in _READY:
        return
    db = sqlite_path(uri)
    if db is not None:
        import mlflow

        with file_lock(db.with_name(db.name + ".init.lock")):
            mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    _READY.add(uri)


def experiment_id(name: str, artifact_location: str | None) -> str:
    """The experiment's id, creating it if needed; another process creating it first is fine."""
    import mlflow
    from mlflow.exceptions import MlflowException

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        # Marked as model training, so the MLflow UI opens it on its runs, not on the GenAI overview.
        return mlflow.create_experiment(name, artifact_location=artifact_location,
                                        tags={"mlflow.experimentKind": "custom_model_development"})
    except MlflowException:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def unfinished_run(run_id: str | None) -> Any | None:
    """The run with this id if it exists and never ended (a process killed with -9 leaves it RUNNING)."""
    if not run_id:
        return None
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        return None
    return run if run.info.status == "RUNNING" else None


def close_as_killed(run_id: str | None) -> None:
    """Mark a run that was left RUNNING by a killed process as KILLED."""
    if unfinished_run(run_id) is not None:
        import mlflow

        mlflow.MlflowClient().set_terminated(run_id, status="KILLED")

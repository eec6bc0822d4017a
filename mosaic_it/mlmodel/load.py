"""`models:/name@alias`, `models:/name/3` or `runs:/<id>/<arm>` as a local weights folder, and the
MLflow model an evaluated folder or URI stands for (so evaluation metrics link to it)."""
from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mosaic_it.errors import MosaicItError

URI_SCHEMES = ("models:/", "runs:/")


def is_model_uri(name: str | None) -> bool:
    return bool(name) and str(name).startswith(URI_SCHEMES)


@contextlib.contextmanager
def downloaded_model(uri: str) -> Iterator[Path]:
    """Download a logged arm from the current tracking server into a temporary folder (removed on
    exit) and yield its weights folder, the pyfunc model's `model` artifact."""
    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="mosaic-it-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except MlflowException as exc:
            raise MosaicItError(f"cannot download {uri} from {mlflow.get_tracking_uri()}: "
                                f"{str(exc).splitlines()[0]}") from None
        yield weights_folder(local, uri)


def weights_folder(local: Path, uri: str) -> Path:
    """The `model` artifact named in a downloaded MLmodel file, kept inside the download."""
    try:
        meta = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8"))
        relative = meta["flavors"]["python_function"]["artifacts"]["model"]["path"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        raise MosaicItError(f"{uri} is not a mosaic-it model (no `model` artifact in its MLmodel)") from None
    folder = (local / relative).resolve()
    if not folder.is_relative_to(local.resolve()) or not folder.is_dir():
        raise MosaicItError(f"{uri}: its MLmodel points outside the downloaded model")
    return folder


def model_id_for(name: str | None) -> str | None:
    """The LoggedModel id behind a `models:/` URI, or behind a training output folder (found by the
    train run recorded in its lineage.json); None when there is none in the current store."""
    from mlflow.exceptions import MlflowException

    try:
        if is_model_uri(name) and str(name).startswith("models:/"):
            return _model_id_of_registry_uri(str(name))
        from mosaic_it.lineage import read_lineage

        folder = Path(str(name)) if name else None
        run_id = read_lineage(folder).get("run_id") or read_lineage(folder.parent if folder else None).get("run_id")
        return _model_of_run(run_id) if run_id else None
    except MlflowException:
        return None


def _model_id_of_registry_uri(uri: str) -> str | None:
    import mlflow

    path = uri.removeprefix("models:/")
    if path.startswith("m-"):
        return path  # models:/<model_id>
    client = mlflow.MlflowClient()
    if "@" in path:
        name, alias = path.split("@", 1)
        version = client.get_model_version_by_alias(name, alias)
    else:
        name, number = path.rsplit("/", 1)
        version = client.get_model_version(name, number)
    return version_model_id(version)


def version_model_id(version: Any) -> str | None:
    """The LoggedModel a registered version was made from. Over the REST API `model_id` can come
    back empty; then the version's source (`models:/<model_id>`) or its run names it."""
    if getattr(version, "model_id", None):
        return version.model_id
    source = str(getattr(version, "source", "") or "")
    if source.startswith("models:/m-"):
        return source.removeprefix("models:/")
    return _model_of_run(version.run_id) if getattr(version, "run_id", None) else None


def _model_of_run(run_id: str) -> str | None:
    import mlflow

    run = mlflow.MlflowClient().get_run(run_id)
    found = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list",
                                        filter_string=f"source_run_id = '{run_id}'")
    return found[0].model_id if len(found) == 1 else None


@contextlib.contextmanager
def linked_model(name: str | None) -> Iterator[str | None]:
    """Within an evaluation run: make the evaluated MLflow model (when there is one) the active
    model, so the metrics logged inside link to it and show on its page."""
    import mlflow

    model_id = model_id_for(name)
    if model_id is None or mlflow.active_run() is None:
        yield None
        return
    with mlflow.set_active_model(model_id=model_id):
        yield model_id

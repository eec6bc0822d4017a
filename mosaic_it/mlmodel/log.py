"""Log a training output as an MLflow model (a pyfunc from code, see pyfunc_model.py) in the
active run, and register it as a new version of `tracking.register_as`."""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic_it.config.tracking import TrackingConfig

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
# What loading the model needs beyond the interpreter; mosaic-it itself brings the rest.
REQUIREMENTS = ("mosaic-it", "torch", "transformers", "peft", "safetensors")


@dataclass(frozen=True)
class LoggedArm:
    model_id: str
    model_uri: str
    registered_name: str | None = None
    version: str | None = None


def registered_name(tracking: TrackingConfig, arm: str) -> str | None:
    """`tracking.register_as` with `{arm}` filled in; None when registration is off."""
    return tracking.register_as.format(arm=arm) if tracking.register_as else None


def signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("string", "prompt")]), outputs=Schema([ColSpec("string")]),
                          params=ParamSchema([ParamSpec("max_new_tokens", "long", 256)]))


def log_trained_model(model_dir: str | Path, arm: str, tracking: TrackingConfig, base_model: str | None,
                      prompt_format: str, data_md5: str) -> LoggedArm:
    """Log `model_dir` as the active run's model `<arm>` and register it when configured."""
    import mlflow

    name = registered_name(tracking, arm)
    tags = {"mosaic_it.arm": arm, "mosaic_it.base_model": str(base_model or "embedded"),
            "mosaic_it.data_md5": data_md5}
    with warnings.catch_warnings():
        # The explicit signature makes an input example unnecessary; one would cost a generation run.
        warnings.filterwarnings("ignore", message=".*An input example was not provided", category=UserWarning,
                                module="mlflow")
        info = mlflow.pyfunc.log_model(
            name=arm, python_model=str(PYFUNC_CODE), artifacts={"model": str(model_dir)},
            model_config={"prompt_format": prompt_format}, signature=signature(),
            pip_requirements=list(REQUIREMENTS), tags=tags)
    if name is None:
        return LoggedArm(info.model_id, info.model_uri)
    from mlflow.exceptions import MlflowException

    try:  # a SQLite or mlflow-server registry creates versions synchronously: nothing to poll for
        version = mlflow.register_model(info.model_uri, name, await_registration_for=0, tags=tags)
    except MlflowException as exc:  # a store without a registry (a plain ./mlruns folder)
        logging.getLogger(__name__).warning("not registered as %s: %s", name, str(exc).splitlines()[0])
        return LoggedArm(info.model_id, info.model_uri)
    return LoggedArm(info.model_id, info.model_uri, name, str(version.version))

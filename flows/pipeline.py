"""`mosaic-it-pipeline`: validate -> split -> augment -> train -> evaluate, one MLflow parent run.

Parameters default to params.yaml; `overrides` takes `{"section.key": value}` or
`["section.key=value"]`, exactly like `mosaic-it ... -S` and `dvc exp run -S`.
"""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.common import Overrides, carry_up, evaluate_trained, parent_run, resolve_params
from tasks.data import split, validate
from tasks.evaluate import evaluate
from tasks.mosaic import augment
from tasks.train import Launcher, train


@flow(name="mosaic-it-pipeline", log_prints=True)
def pipeline(params_path: str = "params.yaml", overrides: Overrides = None,
             launcher: Launcher = "inline", num_processes: int = 1) -> dict[str, Any]:
    params = resolve_params(params_path, overrides)
    given = {"params_path": params_path, "overrides": overrides, "launcher": launcher, "num_processes": num_processes}
    with parent_run("mosaic-it-pipeline", params, given) as run:
        validate(params.validation, params.tracking)
        split(params.split, params.tracking)
        augment(params.augment, params.tracking)
        trained = train(params.train, params.tracking, params.cost, launcher, num_processes)
        carry_up(run, trained.arm, trained.metrics)
        evaluated = evaluate(evaluate_trained(params, trained.output_dir, trained.arm), params.tracking, params.cost)
        carry_up(run, trained.arm, evaluated.metrics)
    return {"mlflow_run_id": run.info.run_id if run is not None else None,
            "model_dir": str(trained.model_dir), "metrics": str(evaluated.metrics_path)}


if __name__ == "__main__":
    pipeline()

"""`mosaic-it-compare`: plain instruction tuning against Mosaic-IT on the same records.

Both arms share one validate/split: the baseline trains on the split's training records, the
Mosaic arm on the mosaic samples built from those same records; both are evaluated the same way
and the comparison report (metrics and cost side by side) closes the run.
"""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.common import Overrides, carry_up, compare_arms, evaluate_trained, parent_run, resolve_params, train_arm
from tasks.data import split, validate
from tasks.evaluate import compare, evaluate
from tasks.mosaic import augment
from tasks.train import Launcher, train


@flow(name="mosaic-it-compare", log_prints=True)
def compare_flow(params_path: str = "params.yaml", overrides: Overrides = None,
                 launcher: Launcher = "inline", num_processes: int = 1) -> dict[str, Any]:
    params = resolve_params(params_path, overrides)
    given = {"params_path": params_path, "overrides": overrides, "launcher": launcher, "num_processes": num_processes}
    with parent_run("mosaic-it-compare", params, given) as run:
        validate(params.validation, params.tracking)
        records = split(params.split, params.tracking)
        mosaic, _ = augment(params.augment, params.tracking)
        arms = {params.compare.baseline: records.paths["train"], params.compare.candidate: mosaic.output}
        for arm, data in arms.items():
            trained = train(train_arm(params, arm, data), params.tracking, params.cost, launcher, num_processes)
            carry_up(run, arm, trained.metrics)
            evaluated = evaluate(evaluate_trained(params, trained.output_dir, arm), params.tracking, params.cost)
            carry_up(run, arm, evaluated.metrics)
        report = compare(compare_arms(params), params.tracking)
    return {"mlflow_run_id": run.info.run_id if run is not None else None, "report": str(report.report)}


if __name__ == "__main__":
    compare_flow()

"""`mosaic-it-study`: baseline vs Mosaic-IT over seeds (params.yaml's `study` section), resumable.

Runs the same steps as `mosaic-it study` and the study DVC stages: the study's records, mosaic
samples per seed, each (seed, arm) cell trained and evaluated, pairwise judging when a judge is
configured, then the report with confidence intervals, under one MLflow parent run per study.
"""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.common import Overrides, flow_run_tags, resolve_params
from mosaic_it.study.tracking import study_run
from tasks import study as steps


@flow(name="mosaic-it-study", log_prints=True)
def study_flow(params_path: str = "params.yaml", overrides: Overrides = None) -> dict[str, Any]:
    params = resolve_params(params_path, overrides)
    with study_run(params, tags=flow_run_tags()) as run:
        steps.records(params)
        for seed in params.study.seeds:
            steps.augment(params, seed)
            for arm in params.study.arms:
                steps.cell(params, seed, arm)
            steps.judge(params, seed)
        summary = steps.report(params, run)
    return {"mlflow_run_id": run.info.run_id if run is not None else None, "report": str(summary.report)}


if __name__ == "__main__":
    study_flow()

"""Prefect tasks for the study (core: mosaic_it.study.run). Each step skips itself when its done
marker still matches its settings and outputs, so a rerun of the flow resumes where the last
one stopped, whichever driver (CLI, DVC, Prefect) ran the finished cells."""
from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mosaic_it.config import Params
from mosaic_it.study import run as study
from tasks.common import IO_RETRIES, IO_RETRY_DELAY_S, publish, retry_on_io

# Resume is decided by the core's done markers (checked against output content), not by Prefect's
# result cache, so the same cell is never trained twice by two drivers.
STEP = {"retries": IO_RETRIES, "retry_delay_seconds": IO_RETRY_DELAY_S, "retry_condition_fn": retry_on_io,
        "cache_policy": NO_CACHE}


@task(name="study-records", **STEP)
def records(params: Params) -> study.StepResult:
    return study.prepare_records(params)


@task(name="study-augment", task_run_name="augment-seed{seed}", **STEP)
def augment(params: Params, seed: int) -> study.StepResult:
    return study.augment_seed(params, seed)


@task(name="study-cell", task_run_name="cell-{arm}-seed{seed}", **STEP)
def cell(params: Params, seed: int, arm: str) -> list[study.StepResult]:
    return study.run_cell(params, seed, arm)


@task(name="study-judge", task_run_name="judge-seed{seed}", **STEP)
def judge(params: Params, seed: int) -> list[study.StepResult]:
    return study.judge_seed(params, seed)


@task(name="study-report", **STEP)
def report(params: Params, parent: Any) -> Any:
    summary = study.report(params)
    study.log_report(parent, summary)
    publish("Study report", summary.report.read_text(encoding="utf-8"))
    return summary

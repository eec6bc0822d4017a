"""Prefect tasks for evaluation and the two-arm comparison (core: mosaic_it.evaluate)."""
from __future__ import annotations

from prefect import task

from mosaic_it.config.evaluate import CompareConfig, EvaluateConfig
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.evaluate.compare import ComparePaths, run_compare
from mosaic_it.evaluate.run import EvalResult, run_evaluation
from tasks.common import IO_RETRIES, IO_RETRY_DELAY_S, child_run_id, publish, retry_on_io
from tasks.progress import prefect_progress


@task(
    name="evaluate", task_run_name="evaluate-{cfg.arm}",
    retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, retry_condition_fn=retry_on_io,
)
def evaluate(cfg: EvaluateConfig, tracking: TrackingConfig) -> EvalResult:
    with prefect_progress():
        result = run_evaluation(cfg, tracking)
    rows = [{"metric": k, "value": v} for k, v in sorted(result.metrics.items()) if not k.endswith("/seconds")]
    publish(f"Evaluation {cfg.arm}", rows, run_id=child_run_id("evaluate", cfg.arm))
    return result


@task(
    name="compare",
    retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, retry_condition_fn=retry_on_io,
)
def compare(cfg: CompareConfig, tracking: TrackingConfig) -> ComparePaths:
    with prefect_progress():
        paths = run_compare(cfg, tracking)
    publish(f"Comparison {cfg.candidate} vs {cfg.baseline}", paths.report.read_text(encoding="utf-8"),
            run_id=child_run_id("compare"))
    return paths

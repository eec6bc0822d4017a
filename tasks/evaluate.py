"""Prefect tasks for evaluation and the two-arm comparison (core: mosaic_it.evaluate)."""
from __future__ import annotations

from prefect import task

from mosaic_it.config.evaluate import CompareConfig, EvaluateConfig
from mosaic_it.config.tracking import CostConfig, TrackingConfig
from mosaic_it.evaluate.compare import ComparePaths, run_compare
from mosaic_it.evaluate.run import EvalResult, run_evaluation
from tasks.common import IO_RETRIES, IO_RETRY_DELAY_S, child_run_id, image_markdown, publish, retry_on_io
from tasks.progress import prefect_progress


@task(
    name="evaluate", task_run_name="evaluate-{cfg.arm}",
    retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, retry_condition_fn=retry_on_io,
)
def evaluate(cfg: EvaluateConfig, tracking: TrackingConfig, cost: CostConfig | None = None) -> EvalResult:
    with prefect_progress() as watch:
        result = run_evaluation(cfg, tracking, cost)
        watch.summary(f"evaluate {cfg.arm}: wrote {result.metrics_path} and plots under {result.out_dir}")
    # The overall numbers; per-rule and per-instruction ones are in the run and the plots below.
    rows = [{"metric": k, "value": v} for k, v in sorted(result.metrics.items())
            if k.count("/") == 1 and not k.endswith("/seconds")]
    plots = {f"plots/{p.name}": p for p in sorted((result.out_dir / "plots").glob("*.png"))}
    publish(f"Evaluation {cfg.arm}", rows, run_id=result.run_id, images=plots)
    return result


@task(
    name="compare",
    retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, retry_condition_fn=retry_on_io,
)
def compare(cfg: CompareConfig, tracking: TrackingConfig) -> ComparePaths:
    with prefect_progress() as watch:
        paths = run_compare(cfg, tracking)
        watch.summary(f"compare: wrote {paths.report}, {paths.metrics}, {paths.table} and {len(paths.plots)} plot(s)")
    run_id = child_run_id("compare")
    report = paths.report.read_text(encoding="utf-8")
    # The report's images are relative to its folder, which a Prefect artifact cannot reach.
    for plot in paths.plots:
        name = plot.relative_to(paths.report.parent).as_posix()
        report = report.replace(f"![{plot.stem}]({name})", image_markdown(plot, name, run_id))
    publish(f"Comparison {cfg.candidate} vs {cfg.baseline}", report, run_id=run_id)
    return paths

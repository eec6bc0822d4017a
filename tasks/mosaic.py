"""Prefect task for the augment stage: mosaic samples and their stats (core: mosaic_it.mosaic)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mosaic_it import tracking as track
from mosaic_it.config.augment import AugmentConfig
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.mosaic.augment import AugmentReport, augment_with_stats
from tasks.common import cached_stage, markdown_table, publish, stage_metrics
from tasks.progress import prefect_progress


def _stats_table(stats: dict[str, Any]) -> str:
    shape = {f"{group}/{k}": v for group in ("instructions_per_sample", "tokens_per_sample")
             for k, v in stats.get(group, {}).items() if k != "histogram"}
    rules = [{"strategy:rule": k, "samples": v} for k, v in stats.get("per_rule", {}).items()]
    return "\n\n".join(t for t in (markdown_table({"samples": stats.get("samples", 0), **shape}),
                                    markdown_table(rules)) if t)


def _publish_stats(cfg: AugmentConfig, result: tuple[AugmentReport, dict[str, Any]], run_id: str | None,
                   cached: bool) -> None:
    report, stats = result
    plot = Path(cfg.stats_dir) / "stats.png"
    images = {"stats/stats.png": plot} if plot.exists() else {}
    publish("Mosaic stats", f"{report.samples} samples from {report.records} records "
            f"({report.skipped_too_long} too long to fit).\n\n{_stats_table(stats)}", run_id, cached, images)


@cached_stage("augment", inputs=lambda c: [c.input],
              outputs=lambda c: [c.output, str(Path(c.stats_dir) / "stats.json")], report=_publish_stats)
def augment(cfg: AugmentConfig, tracking: TrackingConfig) -> tuple[AugmentReport, dict[str, Any]]:
    with track.stage_run("augment", tracking, params={"augment": cfg.model_dump()}) as run:
        with prefect_progress() as watch:
            report, stats = augment_with_stats(cfg)
            watch.summary(f"augment: wrote {report.samples} samples from {report.records} records to {cfg.output}")
        if run is not None:
            track.log_metrics(stage_metrics("augment", report.as_dict(), cfg))
            track.log_metrics({f"augment/per_strategy/{k}": v for k, v in report.per_strategy.items()})
            track.log_artifacts(cfg.stats_dir, "stats")
    return report, stats

"""Prefect tasks for the data stages: validate and split (core: mosaic_it.data)."""
from __future__ import annotations

from pathlib import Path

from mosaic_it import tracking as track
from mosaic_it.config.data import SplitConfig, ValidateConfig
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.data.split import SplitReport, run_split
from mosaic_it.data.validate import RejectedShareError, ValidationReport, run_validation
from tasks.common import cached_stage, markdown_table, publish, stage_metrics

VALIDATE_OUTPUTS = ("valid.jsonl", "rejected.jsonl", "report.json")
SPLIT_OUTPUTS = ("train.jsonl", "heldout.jsonl", "split.json")


def _in(folder: str, names: tuple[str, ...]) -> list[str]:
    return [str(Path(folder) / name) for name in names]


def _publish_validation(cfg: ValidateConfig, report: ValidationReport, run_id: str | None = None,
                        cached: bool = False) -> None:
    totals = {k: v for k, v in report.to_json().items() if k not in ("paths", "reasons")}
    reasons = [{"reason": k, "records": v} for k, v in report.reasons.items()]
    tables = "\n\n".join(t for t in (markdown_table(totals), markdown_table(reasons)) if t)
    publish("Validation report", f"{report.summary()}\n\n{tables}", run_id, cached)


def _publish_split(cfg: SplitConfig, report: SplitReport, run_id: str | None, cached: bool) -> None:
    publish("Held-out split", report.summary(), run_id, cached)


@cached_stage("validate", inputs=lambda c: [c.input], outputs=lambda c: _in(c.output_dir, VALIDATE_OUTPUTS),
              report=_publish_validation)
def validate(cfg: ValidateConfig, tracking: TrackingConfig) -> ValidationReport:
    with track.stage_run("validate", tracking, params={"validate": cfg.model_dump()}) as run:
        try:
            report = run_validation(cfg)
        except RejectedShareError as exc:  # too many rejections: the report still says which and why
            _publish_validation(cfg, exc.report)
            raise
        if run is not None:
            track.log_metrics(stage_metrics("validate", report.to_json(), cfg))
            track.log_artifacts(report.paths["report"])
    return report


@cached_stage("split", inputs=lambda c: [c.input], outputs=lambda c: _in(c.output_dir, SPLIT_OUTPUTS),
              report=_publish_split)
def split(cfg: SplitConfig, tracking: TrackingConfig) -> SplitReport:
    with track.stage_run("split", tracking, params={"split": cfg.model_dump()}) as run:
        report = run_split(cfg)
        if run is not None:
            track.log_metrics({"split/total": report.total, "split/train": report.train,
                               "split/heldout": report.heldout})
    return report

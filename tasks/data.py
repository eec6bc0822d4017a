"""Prefect tasks for the data stages: validate and split (core: mosaic_it.data)."""
from __future__ import annotations

from pathlib import Path

from mosaic_it import tracking as track
from mosaic_it.config.data import SplitConfig, ValidateConfig
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.data.split import SplitReport, run_split
from mosaic_it.data.validate import RejectedShareError, ValidationReport, run_validation
from tasks.common import cached_stage, markdown_table, numeric, publish

VALIDATE_OUTPUTS = ("valid.jsonl", "rejected.jsonl", "report.json")
SPLIT_OUTPUTS = ("train.jsonl", "heldout.jsonl", "split.json")


def _in(folder: str, names: tuple[str, ...]) -> list[str]:
    return [str(Path(folder) / name) for name in names]


def _publish_validation(report: ValidationReport) -> None:
    totals = {k: v for k, v in report.to_json().items() if k not in ("paths", "reasons")}
    reasons = [{"reason": k, "records": v} for k, v in report.reasons.items()]
    publish("Validation report", f"{report.summary()}\n\n{markdown_table(totals)}\n\n{markdown_table(reasons)}")


@cached_stage("validate", inputs=lambda c: [c.input], outputs=lambda c: _in(c.output_dir, VALIDATE_OUTPUTS))
def validate(cfg: ValidateConfig, tracking: TrackingConfig) -> ValidationReport:
    with track.stage_run("validate", tracking, params={"validate": cfg.model_dump()}) as run:
        try:
            report = run_validation(cfg)
        except RejectedShareError as exc:  # too many rejections: the report still says which and why
            _publish_validation(exc.report)
            raise
        if run is not None:
            track.log_metrics(numeric(report.to_json()))
            track.log_artifacts(report.paths["report"])
        _publish_validation(report)
    return report


@cached_stage("split", inputs=lambda c: [c.input], outputs=lambda c: _in(c.output_dir, SPLIT_OUTPUTS))
def split(cfg: SplitConfig, tracking: TrackingConfig) -> SplitReport:
    with track.stage_run("split", tracking, params={"split": cfg.model_dump()}) as run:
        report = run_split(cfg)
        if run is not None:
            track.log_metrics({"total": report.total, "train": report.train, "heldout": report.heldout})
    return report


"""The validate stage: ingest a file, judge every record with Great Expectations, write the verdicts.

Outputs in cfg.output_dir:
  valid.jsonl           clean {instruction, input, output} records, in input order
  valid_positions.json  for each line of valid.jsonl, the record's position in the input file
  rejected.jsonl        {position, line, reasons, [observed], record | raw_text} per rejected record
  report.json           totals, counts per reason, the input path and its sha256
  data_docs/            Great Expectations data docs (HTML)
Every input record lands in exactly one of valid.jsonl and rejected.jsonl.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mosaic_it.atomic import publish_together
from mosaic_it.config.data import ValidateConfig
from mosaic_it.data.frame import build_frame
from mosaic_it.data.gx_run import run_suite
from mosaic_it.data.ingest import TEXT_FIELDS, UNPARSED_FAULTS, InputRecord, read_records
from mosaic_it.data.suite import build_checks
from mosaic_it.errors import MosaicItError
from mosaic_it.jsonl import write_json, write_jsonl
from mosaic_it.paths import refuse_overwriting_inputs

OUTPUT_FILES = ("valid.jsonl", "valid_positions.json", "rejected.jsonl", "report.json")


@dataclass
class ValidationReport:
    input: str
    input_sha256: str
    total: int
    valid: int
    rejected: int
    reasons: dict[str, int]
    max_rejected_fraction: float
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def rejected_fraction(self) -> float:
        return self.rejected / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "input_sha256": self.input_sha256,
            "total": self.total,
            "valid": self.valid,
            "rejected": self.rejected,
            "rejected_fraction": round(self.rejected_fraction, 6),
            "max_rejected_fraction": self.max_rejected_fraction,
            "reasons": self.reasons,
            "paths": self.paths,
        }

    def summary(self) -> str:
        top = ", ".join(f"{reason} {count}" for reason, count in list(self.reasons.items())[:5])
        because = f" (most common reasons: {top})" if top else ""
        return (
            f"Validated {self.total} records from {self.input}: {self.valid} valid, "
            f"{self.rejected} rejected ({self.rejected_fraction:.1%}){because}. "
            f"Clean records: {self.paths.get('valid')}; rejections: {self.paths.get('rejected')}; "
            f"report: {self.paths.get('report')}; data docs: {self.paths.get('data_docs')}."
        )


class RejectedShareError(MosaicItError):
    """More records were rejected than validate.max_rejected_fraction allows; outputs were written."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        super().__init__(
            f"{report.input}: {report.rejected} of {report.total} records rejected "
            f"({report.rejected_fraction:.1%}), above validate.max_rejected_fraction="
            f"{report.max_rejected_fraction}; see {report.paths['rejected']}"
        )


def run_validation(cfg: ValidateConfig, progress: bool = False) -> ValidationReport:
    out = Path(cfg.output_dir)
    refuse_overwriting_inputs("validate", [cfg.input, cfg.tokenizer],
                              [out / name for name in OUTPUT_FILES], [out / "data_docs"])
    with tqdm(total=4, desc="validate", unit="step", disable=not progress) as bar:
        bar.set_postfix_str("reading")
        ingest = read_records(cfg.input)
        bar.update()

        bar.set_postfix_str("tokenizing")
        parsed = [r for r in ingest.records if r.fault is None]
        frame = build_frame(parsed, lambda: _tokenizer(cfg.tokenizer))
        bar.update()

        bar.set_postfix_str("great expectations")
        outcome = run_suite(frame, build_checks(cfg), out / "data_docs")
        bar.update()

        bar.set_postfix_str("writing")
        verdicts = {r.position: [r.fault] for r in ingest.records if r.fault is not None}
        verdicts.update(outcome.reasons)
        with publish_together():  # all four files or, on any failure, the previous four
            report = _write_outputs(cfg, ingest.records, verdicts, outcome.observed, ingest.sha256,
                                    outcome.data_docs_index)
        bar.update()

    if report.rejected_fraction > cfg.max_rejected_fraction:
        raise RejectedShareError(report)
    return report


def _tokenizer(name: str | None):
    # Only counts are needed: the bare Rust tokenizer counts the same without importing
    # transformers and torch (seconds in every `mosaic-it validate`).
    from mosaic_it.models.tokenizer import load_counting_tokenizer

    return load_counting_tokenizer(name)


def _write_outputs(
    cfg: ValidateConfig,
    records: list[InputRecord],
    verdicts: dict[int, list[str]],
    observed: dict[int, dict[str, Any]],
    sha256: str,
    data_docs_index: Path,
) -> ValidationReport:
    out = Path(cfg.output_dir)
    valid = [r for r in records if r.position not in verdicts]
    rejected = [r for r in records if r.position in verdicts]
    paths = {
        "valid": str(out / "valid.jsonl"),
        "valid_positions": str(out / "valid_positions.json"),
        "rejected": str(out / "rejected.jsonl"),
        "report": str(out / "report.json"),
        "data_docs": str(data_docs_index),
    }
    write_jsonl(paths["valid"], ({f: r.fields[f] for f in TEXT_FIELDS} for r in valid))
    write_json(paths["valid_positions"], [r.position for r in valid])
    write_jsonl(paths["rejected"], (_rejection(r, verdicts[r.position], observed.get(r.position)) for r in rejected))

    counts = Counter(reason for reasons in verdicts.values() for reason in reasons)
    report = ValidationReport(
        input=str(cfg.input),
        input_sha256=sha256,
        total=len(records),
        valid=len(valid),
        rejected=len(rejected),
        reasons=dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
        max_rejected_fraction=cfg.max_rejected_fraction,
        paths=paths,
    )
    write_json(paths["report"], report.to_json())
    return report


def _rejection(record: InputRecord, reasons: list[str], observed: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"position": record.position, "line": record.line, "reasons": reasons}
    if observed:  # e.g. {"tokens": 2301} or {"duplicate_of": 12}, as Great Expectations saw them
        row["observed"] = observed
    row["raw_text" if record.fault in UNPARSED_FAULTS else "record"] = record.raw
    return row

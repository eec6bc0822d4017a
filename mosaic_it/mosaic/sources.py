"""Reading the records given to `augment` and `verify`: a record's index here is its source id.

Augmentation expects clean records (the output of `validate`/`split`); the first unusable record
stops it with the file and line, rather than silently shifting every later source id.
"""
from __future__ import annotations

from pathlib import Path

from mosaic_it.data.ingest import read_records
from mosaic_it.errors import InputFileError


def load_source_records(path: str | Path) -> list[dict]:
    records = []
    for record in read_records(path).records:
        fields = record.fields or {}
        usable = record.fault is None and all(isinstance(fields.get(k), str) for k in ("instruction", "input", "output"))
        if not usable or not fields["instruction"].strip() or not fields["output"].strip():
            reason = record.fault or "missing, empty or non-text instruction/input/output"
            raise InputFileError(path, f"record {record.position} is unusable ({reason}); run `mosaic-it validate` first", record.line)
        records.append({"instruction": fields["instruction"], "input": fields["input"], "output": fields["output"]})
    return records

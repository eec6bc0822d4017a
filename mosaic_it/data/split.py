"""The split stage: set a held-out share of the validated records aside before augmentation.

Records are ranked by sha256(seed, record content) and the lowest-ranked share is held out.
Why a content hash rather than a seeded permutation of positions: a record's side depends only on
what it says and on the seed, not on where it sits or on which other records are present. Adding,
removing or reordering records therefore moves few others across the boundary, so a held-out set
stays held out as the data evolves, and identical copies rank side by side (they land on the same
side unless they straddle the cut). Both files keep the input order.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mosaic_it.atomic import publish_together
from mosaic_it.config.data import SplitConfig
from mosaic_it.data.ingest import TEXT_FIELDS, read_records
from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import dumps, write_json, write_jsonl
from mosaic_it.paths import refuse_overwriting_inputs

METHOD = "sha256(seed, record) ranking"


@dataclass
class SplitReport:
    input: str
    total: int
    train: int
    heldout: int
    seed: int
    heldout_fraction: float
    paths: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"Split {self.total} records from {self.input} with seed {self.seed}: "
            f"{self.train} for training ({self.paths.get('train')}), {self.heldout} held out "
            f"({self.paths.get('heldout')}, fraction {self.heldout_fraction}); ids in {self.paths.get('split')}."
        )


def heldout_size(total: int, fraction: float) -> int:
    """round(fraction * total), but at least one when fraction > 0 and one record stays for training."""
    if fraction <= 0 or total < 2:
        return 0
    return min(total - 1, max(1, round(fraction * total)))


def rank_key(record: dict[str, str], seed: int) -> str:
    content = dumps([seed, *(record[f] for f in TEXT_FIELDS)])
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def choose_heldout(records: list[dict[str, str]], fraction: float, seed: int) -> set[int]:
    ranked = sorted(range(len(records)), key=lambda i: (rank_key(records[i], seed), i))
    return set(ranked[: heldout_size(len(records), fraction)])


def _load_clean(path: str) -> tuple[list[dict[str, str]], str]:
    ingest = read_records(path)
    records = []
    for r in ingest.records:
        if r.fault is not None or not all(isinstance(r.fields[f], str) for f in TEXT_FIELDS):
            why = r.fault or "a field is missing or not text"
            raise InputFileError(
                path, f"not a clean {{instruction, input, output}} record ({why}); split reads the output of "
                "`mosaic-it validate`", r.line,
            )
        records.append({f: r.fields[f] for f in TEXT_FIELDS})
    return records, ingest.sha256


def run_split(cfg: SplitConfig) -> SplitReport:
    out = Path(cfg.output_dir)
    refuse_overwriting_inputs("split", [cfg.input], [out / n for n in ("train.jsonl", "heldout.jsonl", "split.json")])
    records, sha256 = _load_clean(cfg.input)
    heldout = choose_heldout(records, cfg.heldout_fraction, cfg.seed)
    train_ids = [i for i in range(len(records)) if i not in heldout]
    heldout_ids = sorted(heldout)

    paths = {
        "train": str(out / "train.jsonl"),
        "heldout": str(out / "heldout.jsonl"),
        "split": str(out / "split.json"),
    }
    summary: dict[str, Any] = {
        "input": str(cfg.input),
        "input_sha256": sha256,
        "method": METHOD,
        "seed": cfg.seed,
        "heldout_fraction": cfg.heldout_fraction,
        "total": len(records),
        "train": len(train_ids),
        "heldout": len(heldout_ids),
        # 0-based positions in the input file (valid.jsonl; validate's valid_positions.json maps
        # them back to the original data file), in the order of the lines of each output file.
        "train_ids": train_ids,
        "heldout_ids": heldout_ids,
    }
    with publish_together():  # all three files or, on any failure, the previous three
        write_jsonl(paths["train"], (records[i] for i in train_ids))
        write_jsonl(paths["heldout"], (records[i] for i in heldout_ids))
        write_json(paths["split"], summary)
    return SplitReport(str(cfg.input), len(records), len(train_ids), len(heldout_ids), cfg.seed,
                       cfg.heldout_fraction, paths)

"""Where a study keeps each seed's data and each (seed, arm) cell's outputs, under study.output_dir.

    records.jsonl                   the training records every arm starts from
    seed<S>/mosaic.jsonl            Mosaic-IT samples built with seed S (+ augment_stats/)
    seed<S>/train/<arm>/            `mosaic-it train` output of the cell (model/, metrics.json, ...)
    seed<S>/evaluate/<arm>/         `mosaic-it evaluate` output of the cell
    seed<S>/judge/<arm>/            pairwise verdicts of <arm> against the baseline, when judged
    seed<S>/done/<step>-<arm>.json  what a finished step produced (see mosaic_it.study.markers)
    report/                         the study report (or study.report_dir)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StudyLayout:
    root: Path

    @property
    def records(self) -> Path:
        return self.root / "records.jsonl"

    def seed_dir(self, seed: int) -> Path:
        return self.root / f"seed{seed}"

    def mosaic(self, seed: int) -> Path:
        return self.seed_dir(seed) / "mosaic.jsonl"

    def augment_stats(self, seed: int) -> Path:
        return self.seed_dir(seed) / "augment_stats"

    def train_root(self, seed: int) -> Path:
        return self.seed_dir(seed) / "train"

    def evaluate_root(self, seed: int) -> Path:
        return self.seed_dir(seed) / "evaluate"

    def judge_dir(self, seed: int, arm: str) -> Path:
        return self.seed_dir(seed) / "judge" / arm

    def marker(self, seed: int, step: str, arm: str = "") -> Path:
        return self.seed_dir(seed) / "done" / (f"{step}-{arm}.json" if arm else f"{step}.json")

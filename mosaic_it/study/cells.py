"""One evaluated study cell (an arm trained with one seed) as it lies on disk."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CellDirs:
    train_dir: Path  # `mosaic-it train` output: metrics.json, model/
    eval_dir: Path  # `mosaic-it evaluate` output of the arm: metrics.json, per-item scores

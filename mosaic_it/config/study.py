"""Section `study` of params.yaml: Mosaic-IT against plain instruction tuning, over seeds, with CIs.

The study reuses the `augment`, `train` and `evaluate` sections for everything it does not set
itself; what it sets is the paper's protocol (how long each arm trains), the seeds, and the
evaluation sizes (full sets by default, unlike the demo's).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Arm = Literal["baseline", "mosaic", "baseline_equal_tokens"]


class StudyEvalSizes(BaseModel):
    """Replaces the matching `evaluate` keys for every study cell; null means the whole set."""

    model_config = ConfigDict(extra="forbid")

    heldout_limit: int | None = Field(500, ge=1)
    mosaic_per_rule: int = Field(10, ge=1)
    ifeval_limit: int | None = Field(None, ge=1)
    pairwise_limit: int | None = Field(None, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)  # null: evaluate.generation.max_new_tokens
    mosaic_max_new_tokens: int | None = Field(None, ge=1)  # null: evaluate.mosaic_max_new_tokens


class StudyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: str = "runs/split/train.jsonl"  # the training records every arm starts from
    max_records: int | None = Field(None, ge=1)  # the first N of them (before augmentation)
    output_dir: str = "runs/study"
    report_dir: str | None = None  # null: <output_dir>/report
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    # The paper's protocol: the baseline sees the records `baseline_epochs` times; Mosaic-IT trains
    # one pass over samples built from `mosaic_epochs` reshuffled augment epochs of the same records.
    arms: list[Arm] = Field(default_factory=lambda: ["baseline", "mosaic"])
    baseline_epochs: float = Field(3.0, gt=0)
    mosaic_epochs: int = Field(4, ge=1)
    evaluation: StudyEvalSizes = Field(default_factory=StudyEvalSizes)
    n_boot: int = Field(2000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        if any(not 0 <= s < 2**32 for s in seeds):
            raise ValueError("seeds must be in [0, 2**32)")
        return seeds

    @field_validator("arms")
    @classmethod
    def _needs_both_arms(cls, arms: list[str]) -> list[str]:
        if "baseline" not in arms or "mosaic" not in arms:
            raise ValueError("arms must include baseline and mosaic")
        if len(set(arms)) != len(arms):
            raise ValueError("arms must be distinct")
        return arms

"""Section `augment` of params.yaml."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mosaic_it.config.types import Seed

WrapMode = Literal["uniform", "fix_max", "max_length", "exp", "pareto", "lognormal", "logistic2"]
StrategyMix = Literal["format", "order", "mask", "both"]


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = "runs/split/train.jsonl"
    output: str = "runs/augment/mosaic.jsonl"
    stats_dir: str = "runs/augment/stats"
    epochs: int = Field(4, ge=1)
    wrap_mode: WrapMode = "uniform"
    max_instructions: int = Field(10, ge=1)
    max_tokens: int = Field(2048, ge=16)
    strategy: StrategyMix = "both"
    seed: Seed = 0
    tokenizer: str | None = None  # None: the embedded model's tokenizer

"""Sections `validate` and `split` of params.yaml."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mosaic_it.config.types import Seed


class ValidateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = "data/alpaca_sample.json"
    output_dir: str = "runs/validate"
    min_instruction_chars: int = Field(1, ge=1)
    max_instruction_chars: int = Field(8000, ge=1)
    max_input_chars: int = Field(8000, ge=1)
    min_output_chars: int = Field(1, ge=1)
    max_output_chars: int = Field(16000, ge=1)
    max_tokens: int = Field(2048, ge=1)
    tokenizer: str | None = None
    drop_exact_duplicates: bool = True
    max_rejected_fraction: float = Field(0.2, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _bounds_ordered(self) -> ValidateConfig:
        if self.min_instruction_chars > self.max_instruction_chars:
            raise ValueError("min_instruction_chars exceeds max_instruction_chars")
        if self.min_output_chars > self.max_output_chars:
            raise ValueError("min_output_chars exceeds max_output_chars")
        return self


class SplitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = "runs/validate/valid.jsonl"
    output_dir: str = "runs/split"
    heldout_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    seed: Seed = 0

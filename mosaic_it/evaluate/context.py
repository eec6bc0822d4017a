"""What every eval receives: the config, the loaded model, and where to write its artifacts."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mosaic_it.config.evaluate import EvaluateConfig
from mosaic_it.errors import InputFileError
from mosaic_it.evaluate.generate import generate

Metrics = dict[str, float]


@dataclass
class EvalContext:
    cfg: EvaluateConfig
    model: Any
    tokenizer: Any
    out_dir: Path  # <output_dir>/<arm>/
    artifacts: list[Path] = field(default_factory=list)  # files to log with the run

    def generate(self, prompts: Sequence[str], desc: str, max_new_tokens: int | None = None) -> list[str]:
        gen = self.cfg.generation
        if max_new_tokens is not None:
            gen = gen.model_copy(update={"max_new_tokens": max_new_tokens})
        return generate(self.model, self.tokenizer, prompts, gen, desc, self.cfg.seed, self.cfg.prompt_format)

    def path(self, *parts: str) -> Path:
        target = self.out_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    @cached_property
    def heldout_records(self) -> list[dict[str, str]]:
        from mosaic_it.train.data import load_records

        path = Path(self.cfg.heldout)
        if not path.exists():
            raise InputFileError(path, "held-out split not found (run `mosaic-it split` first?)")
        return load_records(path)

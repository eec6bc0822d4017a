"""What every eval receives: the config, the loaded model, and where to write its artifacts."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mosaic_it.config.evaluate import EvaluateConfig
from mosaic_it.errors import InputFileError
from mosaic_it.evaluate.backend import Generator, hf_generator
from mosaic_it.evaluate.generation_cache import with_generation_cache

Metrics = dict[str, float]


@dataclass
class EvalContext:
    cfg: EvaluateConfig
    model: Any
    tokenizer: Any
    out_dir: Path  # <output_dir>/<arm>/
    artifacts: list[Path] = field(default_factory=list)  # files to log with the run
    generator: Generator | None = None  # the backend's prompts -> texts (evaluate/backend.py); None: HF
    _cached_generator: Generator | None = field(default=None, init=False, repr=False)

    def generate(self, prompts: Sequence[str], desc: str, max_new_tokens: int | None = None) -> list[str]:
        gen = self.cfg.generation
        if max_new_tokens is not None:
            gen = gen.model_copy(update={"max_new_tokens": max_new_tokens})
        if self._cached_generator is None:
            backend = self.generator or hf_generator(self.model, self.tokenizer, self.cfg.seed, self.cfg.prompt_format)
            self._cached_generator = with_generation_cache(backend, self.cfg, self.model, self.tokenizer)
        return self._cached_generator(prompts, gen, desc)

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

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


@dataclass(frozen=True)
class PromptSet:
    """What an eval asks the model, known before it runs, so that one decoder call can answer
    every eval's prompts (EvalContext.prefetch)."""

    prompts: list[str]
    desc: str  # progress label
    max_new_tokens: int | None = None  # None: evaluate.generation.max_new_tokens


@dataclass
class EvalContext:
    cfg: EvaluateConfig
    model: Any
    tokenizer: Any
    out_dir: Path  # <output_dir>/<arm>/
    artifacts: list[Path] = field(default_factory=list)  # files to log with the run
    generator: Generator | None = None  # the backend's prompts -> texts (evaluate/backend.py); None: HF
    _cached_generator: Generator | None = field(default=None, init=False, repr=False)
    _prefetched: dict[tuple[str, int], str] = field(default_factory=dict, init=False, repr=False)

    def ask(self, request: PromptSet) -> list[str]:
        return self.generate(request.prompts, request.desc, request.max_new_tokens)

    def generate(self, prompts: Sequence[str], desc: str, max_new_tokens: int | None = None) -> list[str]:
        gen = self.cfg.generation
        if max_new_tokens is not None:
            gen = gen.model_copy(update={"max_new_tokens": max_new_tokens})
        jobs = [(prompt, gen.max_new_tokens) for prompt in prompts]
        if all(job in self._prefetched for job in jobs):
            return [self._prefetched[job] for job in jobs]
        return self._generator()(prompts, gen, desc)

    def prefetch(self, requests: Sequence[PromptSet]) -> None:
        """Answer several evals' prompts in one call, where that cannot change an answer: under
        greedy continuous batching an answer ignores its batch mates, so the slots stay full from
        one eval's prompts to the next instead of draining at the end of each call."""
        from mosaic_it.evaluate.backend import pick_backend
        from mosaic_it.evaluate.generate import continuous

        gen = self.cfg.generation
        if len(requests) < 2 or pick_backend(self.cfg.backend, self.cfg.device) != "hf":
            return
        jobs = list(dict.fromkeys((p, r.max_new_tokens or gen.max_new_tokens) for r in requests for p in r.prompts))
        if not jobs or not continuous(self.model, gen.model_copy(update={"max_new_tokens": max(c for _, c in jobs)})):
            return
        label = " + ".join(r.desc for r in requests)
        answers = self._generator()([p for p, _ in jobs], gen, label, max_new_tokens=[cap for _, cap in jobs])
        self._prefetched.update(zip(jobs, answers))

    @property
    def prefetched(self) -> bool:
        return bool(self._prefetched)

    def _generator(self) -> Generator:
        if self._cached_generator is None:
            backend = self.generator or hf_generator(self.model, self.tokenizer, self.cfg.seed, self.cfg.prompt_format)
            self._cached_generator = with_generation_cache(backend, self.cfg, self.model, self.tokenizer)
        return self._cached_generator

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

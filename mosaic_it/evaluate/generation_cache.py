"""Generations kept on disk, so that a rerun or a resumed study never generates the same answer twice.

One append-only JSON Lines file per model, `<cache_dir>/<fingerprint>.jsonl`, named by a hash of
the model's weights and config. Each line holds the hash of what decides the answer (the exact
rendered prompt, the generation settings, the prompt format, the backend) and the answer. Lines
are appended as answers finish (APPEND_EVERY at a time), so a killed run keeps what it finished. The file is
untrusted: a line that is not a well-formed entry (a torn last line, an edit) is ignored, and
the answer is generated again.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mosaic_it.config.evaluate import GenerationConfig
from mosaic_it.evaluate.backend import Generator, OnAnswer

# Answers gathered before each append to the cache file.
APPEND_EVERY = 64
KEY_HEX = 64


def model_fingerprint(model: Any, tokenizer: Any) -> str:
    """sha256 of the loaded weights (every parameter and buffer, by name, dtype and shape) and of
    the model config and tokenizer vocabulary: a retrained, merged or re-quantized model differs."""
    import torch

    digest = hashlib.sha256()
    digest.update(model.config.to_json_string(use_diff=False).encode())
    digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def entry_key(rendered_prompt: str, gen: GenerationConfig, prompt_format: str, backend: str, seed: int) -> str:
    """What decides an answer. The seed matters only when sampling; the batch size when sampling
    and, as the number of rows every projection multiplies, under continuous batching."""
    settings: dict[str, Any] = {"max_new_tokens": gen.max_new_tokens, "temperature": gen.temperature,
                                "max_prompt_tokens": gen.max_prompt_tokens, "prompt_format": prompt_format,
                                "backend": backend, "batching": gen.batching}
    if gen.temperature > 0:
        settings.update(seed=seed, batch_size=gen.batch_size)
    elif gen.batching == "continuous":
        settings.update(batch_size=gen.batch_size)
    text = json.dumps([rendered_prompt, settings], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class GenerationCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries = self._read()

    def _read(self) -> dict[str, str]:
        entries: dict[str, str] = {}
        if not self.path.is_file():
            return entries
        with self.path.open("rb") as handle:
            for raw in handle:
                try:
                    row = json.loads(raw)
                except (ValueError, RecursionError):
                    continue
                if (isinstance(row, dict) and isinstance(row.get("key"), str) and len(row["key"]) == KEY_HEX
                        and isinstance(row.get("text"), str)):
                    entries[row["key"]] = row["text"]
        return entries

    def add(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Append entries with one write to a file opened for appending, so that concurrent
        writers never interleave within a line."""
        if not pairs:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = "".join(json.dumps({"key": k, "text": t}, ensure_ascii=False) + "\n" for k, t in pairs)
        # O_NOFOLLOW: a symlink planted at the cache path is refused, never written through.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            os.write(descriptor, payload.encode("utf-8"))
        finally:
            os.close(descriptor)
        self.entries.update(pairs)


def cached(generator: Generator, cache: GenerationCache, render: Callable[[str], str], prompt_format: str,
           backend: str, seed: int) -> Generator:
    """`generator` behind the cache: only prompts without an entry reach it, in one call, longest
    first, and answers are appended every APPEND_EVERY as they become final (a killed run keeps
    what it finished; vLLM hands its answers over at the end of the call).

    Under static batching padding changes logits in the last bits, so a prompt's greedy answer
    can depend on which prompts share its batch. The static path batches prompts longest first;
    the missing prompts go to it in that order, so a rerun after a partial run meets the batches
    one uncached call would meet for those prompts. (Continuous batching needs none of this: its
    answers ignore batch mates.)
    """

    def run(prompts: Sequence[str], gen: GenerationConfig, desc: str, *, max_new_tokens: Sequence[int] | None = None,
            on_answer: OnAnswer | None = None) -> list[str]:
        caps = list(max_new_tokens) if max_new_tokens is not None else [gen.max_new_tokens] * len(prompts)
        settings = {cap: gen.model_copy(update={"max_new_tokens": cap}) for cap in set(caps)}
        rendered = [render(p) for p in prompts]
        keys = [entry_key(r, settings[cap], prompt_format, backend, seed) for r, cap in zip(rendered, caps)]
        missing: dict[str, tuple[int, str, int]] = {}
        for prompt, text, key, cap in zip(prompts, rendered, keys, caps):
            if key not in cache.entries:
                missing.setdefault(key, (len(text), prompt, cap))
        todo = sorted(missing.items(), key=lambda kv: kv[1][0], reverse=True)
        heard: list[tuple[str, str]] = []

        def keep(index: int, answer: str) -> None:
            heard.append((todo[index][0], answer))
            if len(heard) >= APPEND_EVERY:
                cache.add(heard)
                heard.clear()

        try:
            if todo:
                generator([prompt for _, (_, prompt, _) in todo], gen, desc,
                          max_new_tokens=[cap for _, (_, _, cap) in todo] if max_new_tokens is not None else None,
                          on_answer=keep)
        finally:
            cache.add(heard)
        answers = [cache.entries[key] for key in keys]
        if on_answer is not None:
            for index, answer in enumerate(answers):
                on_answer(index, answer)
        return answers

    return run


def with_generation_cache(generator: Generator, cfg: Any, model: Any, tokenizer: Any) -> Generator:
    """The evaluate section's generator behind `<generation.cache_dir>/<fingerprint>.jsonl`, or
    unchanged when the cache is off (`evaluate.generation.cache_dir: null`)."""
    if cfg.generation.cache_dir is None:
        return generator
    from mosaic_it.evaluate.backend import pick_backend
    from mosaic_it.evaluate.generate import resolve_batching
    from mosaic_it.train.data import render_prompt

    cache = GenerationCache(Path(cfg.generation.cache_dir) / f"{model_fingerprint(model, tokenizer)}.jsonl")
    inner = cached(generator, cache, lambda p: render_prompt(p, tokenizer, cfg.prompt_format), cfg.prompt_format,
                   pick_backend(cfg.backend, cfg.device), cfg.seed)
    def run(prompts: Sequence[str], gen: GenerationConfig, desc: str, **options: Any) -> list[str]:
        return inner(prompts, resolve_batching(model, gen), desc, **options)  # `auto` keyed as resolved

    return run

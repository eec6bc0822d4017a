"""Batched chat generation in the training prompt format, greedy by default: continuous batching
(evaluate/slots.py) for greedy answers, HF `generate` over padded batches otherwise."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


from mosaic_it.config.evaluate import GenerationConfig
from mosaic_it.evaluate.backend import OnAnswer
from mosaic_it.jsonl import write_jsonl
from mosaic_it.progress import progress
from mosaic_it.train.data import render_prompt  # the prompt the model was trained on


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    cfg: GenerationConfig,
    desc: str = "generate",
    seed: int = 0,
    prompt_format: str = "chat_template",
    max_new_tokens: Sequence[int] | None = None,
    on_answer: OnAnswer | None = None,
) -> list[str]:
    """Answer each user message; results come back in the order of `prompts`.

    `max_new_tokens` gives each prompt its own limit (else `cfg.max_new_tokens` for all); that
    needs continuous batching, where an answer depends on its own prompt and limit only.
    `on_answer(i, text)` hears each answer as soon as it is final."""
    import torch

    torch.manual_seed(seed)
    texts = [render_prompt(p, tokenizer, prompt_format) for p in prompts]
    tokenizer.padding_side = "left"  # new tokens must follow every prompt directly
    tokenizer.truncation_side = "left"  # an over-long prompt keeps its question
    caps = list(max_new_tokens) if max_new_tokens is not None else [cfg.max_new_tokens] * len(texts)
    with progress(len(texts), desc, unit="prompt") as bar:
        if continuous(model, cfg.model_copy(update={"max_new_tokens": max(caps, default=cfg.max_new_tokens)})):
            return _generate_continuous(model, tokenizer, texts, cfg, caps, bar, on_answer)
        if set(caps) - {cfg.max_new_tokens}:
            raise ValueError("a max_new_tokens per prompt needs greedy continuous batching")
        return _generate_static(model, tokenizer, texts, cfg, bar, on_answer)


def resolve_batching(model: Any, cfg: GenerationConfig) -> GenerationConfig:
    """`batching: auto` made concrete for the model's device (answers and cache keys use this)."""
    if cfg.batching != "auto":
        return cfg
    return cfg.model_copy(update={"batching": "static" if model.device.type == "cuda" else "continuous"})


def continuous(model: Any, cfg: GenerationConfig) -> bool:
    """Whether greedy answers come from evaluate/slots.py (batch-independent) or HF generate."""
    from mosaic_it.evaluate import slots

    return (resolve_batching(model, cfg).batching == "continuous" and cfg.temperature == 0
            and slots.supports(model, cfg.max_prompt_tokens + cfg.max_new_tokens))


def _generate_continuous(model: Any, tokenizer: Any, texts: list[str], cfg: GenerationConfig, caps: list[int],
                         bar: Any, on_answer: OnAnswer | None) -> list[str]:
    from mosaic_it.evaluate.forked_slots import generate_greedy_forked

    ids = tokenizer(texts, truncation=True, max_length=cfg.max_prompt_tokens, add_special_tokens=False)["input_ids"]
    # The longest possible answers first, then the long prefills: what starts last is then short,
    # so fewer slots idle at the end (the order never changes an answer).
    order = sorted(range(len(ids)), key=lambda i: (caps[i], len(ids[i])), reverse=True)
    answers = [""] * len(texts)

    def done(position: int, tokens: list[int]) -> None:
        index = order[position]
        answers[index] = tokenizer.decode(tokens, skip_special_tokens=True).strip()
        bar.update(1)
        if on_answer is not None:
            on_answer(index, answers[index])

    generate_greedy_forked(model, [ids[i] for i in order], [caps[i] for i in order], cfg.batch_size,
                           {tokenizer.eos_token_id}, tokenizer.pad_token_id, on_done=done)
    return answers


def _generate_static(model: Any, tokenizer: Any, texts: list[str], cfg: GenerationConfig, bar: Any,
                     on_answer: OnAnswer | None) -> list[str]:
    import torch

    # Batching prompts of similar length wastes the least compute on padding.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    answers: list[str] = [""] * len(texts)
    sampling = cfg.temperature > 0
    extra = {"do_sample": True, "temperature": cfg.temperature} if sampling else {"do_sample": False}
    for start in range(0, len(order), cfg.batch_size):
        batch = order[start : start + cfg.batch_size]
        enc = tokenizer(
            [texts[i] for i in batch],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=cfg.max_prompt_tokens,
            add_special_tokens=False,
        ).to(model.device)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=cfg.max_new_tokens,
                use_cache=True,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                top_p=None,
                top_k=None,
                **extra,
            )
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        for i, row in zip(batch, new_tokens):
            answers[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
            if on_answer is not None:
                on_answer(i, answers[i])
        bar.update(len(batch))
    return answers


def save_generations(path: str | Path, rows: Sequence[dict]) -> Path:
    """Generations are artifacts: one JSON line per prompt with whatever identifies it."""
    write_jsonl(path, rows)
    return Path(path)

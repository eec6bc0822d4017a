"""Greedy answers to a fixed prompt list, saved with every run to eyeball what training did."""
from __future__ import annotations

from typing import Any

import torch

from mosaic_it.train.compile import eager
from mosaic_it.train.fsdp import is_sharded


@torch.no_grad()
def sample_generations(model: Any, tokenizer: Any, prompts: list[str], prompt_format: str,
                       max_new_tokens: int) -> list[dict[str, str]]:
    """Evaluation's generation path: on CPU all prompts decode together, each answer the one HF
    generate gives that prompt alone."""
    from mosaic_it.config.evaluate import GenerationConfig
    from mosaic_it.evaluate.generate import generate

    if not prompts or max_new_tokens <= 0:
        return []
    # Sharded layers run only inside the model's own forward: HF generate, one prompt at a time.
    sharded = is_sharded(model)
    settings = GenerationConfig(max_new_tokens=max_new_tokens, cache_dir=None, batching="static" if sharded else "auto",
                                batch_size=1 if sharded else len(prompts))
    core = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA layers stay in place
    was_training, sides = model.training, (tokenizer.padding_side, tokenizer.truncation_side)
    model.eval()
    try:
        with eager():
            answers = generate(core, tokenizer, prompts, settings, desc="samples", prompt_format=prompt_format)
    finally:
        model.train(was_training)
        tokenizer.padding_side, tokenizer.truncation_side = sides  # the tokenizer saved with the model
    return [{"prompt": prompt, "response": answer} for prompt, answer in zip(prompts, answers)]

"""Greedy answers to a fixed prompt list, saved with every run to eyeball what training did."""
from __future__ import annotations

from typing import Any

import torch

from mosaic_it.train.compile import eager
from mosaic_it.train.data import render_prompt


@torch.no_grad()
def sample_generations(model: Any, tokenizer: Any, prompts: list[str], prompt_format: str,
                       max_new_tokens: int, device: torch.device) -> list[dict[str, str]]:
    if not prompts or max_new_tokens <= 0:
        return []
    was_training = model.training
    model.eval()
    with eager():
        results = [_answer(model, tokenizer, prompt, prompt_format, max_new_tokens, device) for prompt in prompts]
    model.train(was_training)
    return results


def _answer(model: Any, tokenizer: Any, prompt: str, prompt_format: str, max_new_tokens: int,
            device: torch.device) -> dict[str, str]:
    text = render_prompt(prompt, tokenizer, prompt_format)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         do_sample=False, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    answer = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    return {"prompt": prompt, "response": answer}

"""Loss and perplexity on held-out original records, on response tokens only, as in training."""
from __future__ import annotations

import math
from typing import Any

from tqdm.auto import tqdm

from mosaic_it.errors import MosaicItError
from mosaic_it.evaluate.context import EvalContext, Metrics
from mosaic_it.train.data import IGNORE, Example, encode


def response_loss(model: Any, examples: list[Example], batch_size: int, pad_id: int) -> tuple[float, int]:
    """(summed cross-entropy over response tokens, number of those tokens)."""
    import torch
    import torch.nn.functional as F

    total, tokens = 0.0, 0
    ordered = sorted(examples, key=len)
    for start in tqdm(range(0, len(ordered), batch_size), desc="held-out loss", unit="batch"):
        batch = ordered[start : start + batch_size]
        width = max(len(e) for e in batch)
        ids = torch.tensor([e.input_ids + [pad_id] * (width - len(e)) for e in batch], device=model.device)
        labels = torch.tensor([e.labels + [IGNORE] * (width - len(e)) for e in batch], device=model.device)
        mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in batch], device=model.device)
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        # Position t predicts token t + 1.
        loss = F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1),
            ignore_index=IGNORE, reduction="sum",
        )
        total += loss.item()
        tokens += int((labels[:, 1:] != IGNORE).sum())
    return total, tokens


def run(ctx: EvalContext) -> Metrics:
    cfg = ctx.cfg
    records = ctx.heldout_records[: cfg.heldout_limit]
    examples = []
    for record in records:
        example, _ = encode(record, ctx.tokenizer, cfg.prompt_format, cfg.heldout_max_tokens)
        if example is not None:
            examples.append(example)
    if not examples:
        raise MosaicItError("no held-out record fits evaluate.heldout_max_tokens")
    total, tokens = response_loss(ctx.model, examples, cfg.generation.batch_size, ctx.tokenizer.pad_token_id)
    loss = total / tokens
    return {"loss": loss, "perplexity": math.exp(loss), "records": len(examples), "tokens": tokens}

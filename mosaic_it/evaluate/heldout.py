"""Loss and perplexity on held-out original records, on response tokens only, as in training."""
from __future__ import annotations

import math
from typing import Any


from mosaic_it.errors import MosaicItError
from mosaic_it.evaluate.context import EvalContext, Metrics
from mosaic_it.progress import progress
from mosaic_it.train.data import IGNORE, Example, encode


def response_loss(model: Any, examples: list[Example], batch_size: int, pad_id: int) -> tuple[float, int]:
    """(summed cross-entropy over response tokens, number of those tokens)."""
    import torch
    import torch.nn.functional as F

    total, tokens = 0.0, 0
    ordered = sorted(examples, key=len)
    bar = progress(len(ordered), "held-out loss", unit="record")
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        width = max(len(e) for e in batch)
        ids = torch.tensor([e.input_ids + [pad_id] * (width - len(e)) for e in batch], device=model.device)
        labels = torch.tensor([e.labels + [IGNORE] * (width - len(e)) for e in batch], device=model.device)
        mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in batch], device=model.device)
        # Position t predicts token t + 1; only response positions need the (vocab-wide) head.
        targets = labels[:, 1:]
        keep = targets != IGNORE
        with torch.inference_mode():
            hidden = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
            logits = model.get_output_embeddings()(hidden[keep]).float()
        total += F.cross_entropy(logits, targets[keep], reduction="sum").item()
        tokens += int(keep.sum())
        bar.update(len(batch))
    bar.close()
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

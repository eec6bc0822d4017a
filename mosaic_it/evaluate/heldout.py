"""Loss and perplexity on held-out original records, on response tokens only, as in training."""
from __future__ import annotations

import math
from typing import Any

from mosaic_it.errors import MosaicItError
from mosaic_it.evaluate.context import EvalContext, Metrics
from mosaic_it.evaluate.items import aggregate, short_hash, write_items
from mosaic_it.progress import progress
from mosaic_it.records import instruction_text
from mosaic_it.train.data import IGNORE, Example, encode


def record_losses(model: Any, examples: list[Example], batch_size: int, pad_id: int) -> list[tuple[float, int]]:
    """Per example, in the given order: (summed cross-entropy over its response tokens, their number)."""
    import torch
    import torch.nn.functional as F

    results: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    order = sorted(range(len(examples)), key=lambda k: len(examples[k]))
    bar = progress(len(order), "held-out loss", unit="record")
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        batch = [examples[k] for k in chosen]
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
            losses = F.cross_entropy(logits, targets[keep], reduction="none").double()
        counts = keep.sum(dim=1).tolist()
        for k, part, count in zip(chosen, torch.split(losses, counts), counts):
            results[k] = (float(part.sum()), int(count))
        bar.update(len(batch))
    bar.close()
    return results


def response_loss(model: Any, examples: list[Example], batch_size: int, pad_id: int) -> tuple[float, int]:
    """(summed cross-entropy over response tokens, number of those tokens)."""
    per_record = record_losses(model, examples, batch_size, pad_id)
    return math.fsum(s for s, _ in per_record), sum(n for _, n in per_record)


def run(ctx: EvalContext) -> Metrics:
    cfg = ctx.cfg
    ids, examples = [], []
    for index, record in enumerate(ctx.heldout_records[: cfg.heldout_limit]):
        example, _ = encode(record, ctx.tokenizer, cfg.prompt_format, cfg.heldout_max_tokens)
        if example is not None:
            # Position and content: the same record of the fixed held-out split in every arm and seed.
            ids.append(f"{index}:{short_hash(instruction_text(record) + chr(0) + record['output'])}")
            examples.append(example)
    if not examples:
        raise MosaicItError("no held-out record fits evaluate.heldout_max_tokens")
    per_record = record_losses(ctx.model, examples, cfg.generation.batch_size, ctx.tokenizer.pad_token_id)
    rows = [(item, {"loss": (total, float(tokens))}) for item, (total, tokens) in zip(ids, per_record)]
    ctx.artifacts.append(write_items(ctx.out_dir, "heldout", rows))
    loss = aggregate(rows)["loss"]
    return {"loss": loss, "perplexity": math.exp(loss), "records": len(examples),
            "tokens": sum(tokens for _, tokens in per_record)}

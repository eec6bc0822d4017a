"""Loss and perplexity on held-out original records, on response tokens only, as in training."""
from __future__ import annotations

import math
from typing import Any

from mosaic_it.errors import MosaicItError
from mosaic_it.evaluate.context import EvalContext, Metrics
from mosaic_it.evaluate.items import aggregate, short_hash, write_items
from mosaic_it.progress import progress
from mosaic_it.records import instruction_text
from mosaic_it.train.data import IGNORE, Example, encode_many

ROW_TOKENS = 2048  # held-out records packed into rows of about this many tokens


def pack_rows(lengths: list[int], row_tokens: int) -> list[list[int]]:
    """Indices of records, shortest first, in rows of at most `row_tokens` tokens (a longer
    record gets a row of its own)."""
    rows: list[list[int]] = []
    used = row_tokens
    for k in sorted(range(len(lengths)), key=lengths.__getitem__):
        if used + lengths[k] > row_tokens:
            rows.append([])
            used = 0
        rows[-1].append(k)
        used += lengths[k]
    return rows


def record_losses(model: Any, examples: list[Example]) -> list[tuple[float, int]]:
    """Per example, in the given order: (summed cross-entropy over its response tokens, their number).
    Records are packed back to back into rows, with position ids restarting at each, and attended
    per record (train/attention.py): no compute on padding, 1.3x the padded batches it replaced on
    CPU (docs/benchmarks.md). Where the model's attention would mix a row's records, each record
    gets a row of its own."""
    import torch
    import torch.nn.functional as F

    from mosaic_it.train.attention import keeps_samples_apart

    decoder, head = model.get_decoder(), model.get_output_embeddings()
    results: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    bar = progress(len(examples), "held-out loss", unit="record")
    for row in pack_rows([len(e) for e in examples], ROW_TOKENS if keeps_samples_apart(model) else 0):
        chosen = [examples[k] for k in row]
        ids = torch.tensor([[t for e in chosen for t in e.input_ids]], device=model.device)
        positions = torch.tensor([[p for e in chosen for p in range(len(e))]], device=model.device)
        # Position t predicts token t + 1 of its own record; a record's last position predicts nothing.
        # Only response positions need the (vocab-wide) head.
        targets = torch.tensor([t for e in chosen for t in [*e.labels[1:], IGNORE]], device=model.device)
        keep = targets != IGNORE
        with torch.inference_mode():
            hidden = decoder(input_ids=ids, position_ids=positions).last_hidden_state[0]
            logits = head(hidden[keep]).float()
            losses = F.cross_entropy(logits, targets[keep], reduction="none").double()
        counts = [sum(label != IGNORE for label in e.labels[1:]) for e in chosen]
        for k, part, count in zip(row, torch.split(losses, counts), counts):
            results[k] = (float(part.sum()), count)
        bar.update(len(row))
    bar.close()
    return results


def response_loss(model: Any, examples: list[Example]) -> tuple[float, int]:
    """(summed cross-entropy over response tokens, number of those tokens)."""
    per_record = record_losses(model, examples)
    return math.fsum(s for s, _ in per_record), sum(n for _, n in per_record)


def run(ctx: EvalContext) -> Metrics:
    cfg = ctx.cfg
    ids, examples = [], []
    records = ctx.heldout_records[: cfg.heldout_limit]
    encoded = encode_many(records, ctx.tokenizer, cfg.prompt_format, cfg.heldout_max_tokens)
    for index, (record, (example, _)) in enumerate(zip(records, encoded)):
        if example is not None:
            # Position and content: the same record of the fixed held-out split in every arm and seed.
            ids.append(f"{index}:{short_hash(instruction_text(record) + chr(0) + record['output'])}")
            examples.append(example)
    if not examples:
        raise MosaicItError("no held-out record fits evaluate.heldout_max_tokens")
    per_record = record_losses(ctx.model, examples)
    rows = [(item, {"loss": (total, float(tokens))}) for item, (total, tokens) in zip(ids, per_record)]
    ctx.artifacts.append(write_items(ctx.out_dir, "heldout", rows))
    loss = aggregate(rows)["loss"]
    return {"loss": loss, "perplexity": math.exp(loss), "records": len(examples),
            "tokens": sum(tokens for _, tokens in per_record)}

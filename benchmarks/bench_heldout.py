"""Held-out loss: packed rows (evaluate/heldout.py) against the padded batches they replaced.

Both compute every record's summed response-token cross-entropy on the same model and records
(params.yaml's evaluate section: heldout_limit, heldout_max_tokens, prompt_format), alternating,
best of each; the per-record losses are compared. Run from the repository root after `dvc repro
split` (or pass --heldout):

    .venv/bin/python benchmarks/bench_heldout.py --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def padded_batches(model: Any, examples: list, batch_size: int, pad_id: int) -> list[tuple[float, int]]:
    """The previous implementation: length-sorted batches padded to their longest record."""
    import torch
    import torch.nn.functional as F

    from mosaic_it.train.data import IGNORE

    results: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    order = sorted(range(len(examples)), key=lambda k: len(examples[k]))
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        batch = [examples[k] for k in chosen]
        width = max(len(e) for e in batch)
        ids = torch.tensor([e.input_ids + [pad_id] * (width - len(e)) for e in batch], device=model.device)
        labels = torch.tensor([e.labels + [IGNORE] * (width - len(e)) for e in batch], device=model.device)
        mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in batch], device=model.device)
        targets = labels[:, 1:]
        keep = targets != IGNORE
        with torch.inference_mode():
            hidden = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
            losses = F.cross_entropy(model.get_output_embeddings()(hidden[keep]).float(), targets[keep],
                                     reduction="none").double()
        counts = keep.sum(dim=1).tolist()
        for k, part, count in zip(chosen, torch.split(losses, counts), counts):
            results[k] = (float(part.sum()), int(count))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--heldout", default=None, help="held-out records (default: params.yaml's)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="the padded batches' size (evaluate used 32)")
    args = parser.parse_args()

    from mosaic_it.config import load_params
    from mosaic_it.evaluate.heldout import record_losses
    from mosaic_it.evaluate.model import load_model
    from mosaic_it.train.data import encode

    cfg = load_params(args.params, []).evaluate
    model, tokenizer = load_model(None, "cpu", cfg.attn_implementation)
    path = Path(args.heldout or cfg.heldout)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    examples = [e for e in (encode(r, tokenizer, cfg.prompt_format, cfg.heldout_max_tokens)[0]
                            for r in records[: cfg.heldout_limit]) if e is not None]
    ways = {f"padded batches of {args.batch_size} (before)": lambda: padded_batches(model, examples, args.batch_size,
                                                                                       tokenizer.pad_token_id),
            "packed rows (evaluate/heldout.py)": lambda: record_losses(model, examples)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    losses: dict[str, list[tuple[float, int]]] = {}
    loads = []
    for _ in range(args.rounds):
        for name, way in ways.items():
            started = time.perf_counter()
            losses[name] = way()
            seconds[name].append(time.perf_counter() - started)
            loads.append(os.getloadavg()[0])
    before, after = losses.values()
    print(f"{len(examples)} records, {sum(len(e) for e in examples)} tokens, {args.rounds} rounds, "
          f"load {min(loads):.1f}-{max(loads):.1f}, {os.cpu_count()} CPU cores")
    for name, times in seconds.items():
        print(f"| {name} | {', '.join(f'{t:.2f}' for t in times)} s | best {min(times):.2f} s |")
    first, second = seconds.values()
    print(f"padded / packed, best of each: {min(first) / min(second):.2f}x")
    print(f"token counts equal: {[n for _, n in before] == [n for _, n in after]}; per-record losses: "
          f"max relative difference {max(abs(a - b) / a for (a, _), (b, _) in zip(before, after)):.1e}")


if __name__ == "__main__":
    main()

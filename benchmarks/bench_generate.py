"""Evaluation generation: continuous batching (evaluate/slots.py) against static HF batches.

One process loads the embedded SmolLM2-135M-Instruct once and answers the same IFEval prompts
with each decoder in turn, alternating rounds (static, continuous, static, continuous, ...), so
machine load hits both alike. Greedy, the evaluate section's settings, no generation cache. It
reports prompts/s (best and median over rounds) for each, the ratio of the bests, and how many
answers agree token for token:
- continuous vs the static path of today (batches of 8);
- the static path against itself when its batches change (batch 8 vs batch 1): a prompt's answer
  there depends on its batch mates, which bounds what "identical to today's path" can mean.

    .venv/bin/python benchmarks/bench_generate.py [--prompts 64] [--max-new-tokens 128] [--rounds 3]
    python benchmarks/bench_generate.py --model DIR --device cuda   # any causal LM, on a GPU
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from side_by_side import agree, alternate, print_table, rows

ROOT = Path(__file__).resolve().parents[1]
IFEVAL = ROOT / "data" / "eval" / "ifeval_input_data.jsonl"  # the shipped copy of IFEval's prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--static-batch", type=int, default=8)
    parser.add_argument("--slots", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--model", default=None, help="model directory (default: the embedded SmolLM2-135M)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--skip-batch-1", action="store_true", help="skip the static batch 8 vs batch 1 check")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    from mosaic_it.config.evaluate import GenerationConfig
    from mosaic_it.evaluate.generate import generate
    from mosaic_it.evaluate.model import load_model

    with IFEVAL.open(encoding="utf-8") as handle:
        prompts = [json.loads(line)["prompt"] for _, line in zip(range(args.prompts), handle)]
    model, tokenizer = load_model(args.model, args.device)
    base = GenerationConfig(max_new_tokens=args.max_new_tokens, cache_dir=None)
    baseline = f"static batch {args.static_batch}"
    setups = {baseline: base.model_copy(update={"batching": "static",
                                                                          "batch_size": args.static_batch})}
    setups.update({f"continuous {n} slots": base.model_copy(update={"batch_size": n}) for n in args.slots})
    decoders = {name: (lambda gen=gen, name=name: generate(model, tokenizer, prompts, gen, desc=name))
                for name, gen in setups.items()}
    seconds, answers, loads = alternate(decoders, args.rounds)
    today = answers[baseline]
    alone = None if args.skip_batch_1 else generate(
        model, tokenizer, prompts, base.model_copy(update={"batching": "static", "batch_size": 1}))
    table = rows(seconds, answers, baseline, len(prompts))
    import torch

    device = torch.cuda.get_device_name() if args.device == "cuda" else f"{os.cpu_count()} CPU cores"
    result = {"machine": f"{platform.processor() or platform.machine()}, {device}", "model": args.model or "embedded",
              "dtype": str(next(model.parameters()).dtype),
              "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
              "load_1min_min_max": [min(loads), max(loads)], "rows": table,
              "static_batch_vs_batch_1_same_answer": None if alone is None else agree(today, alone)}
    print(f"{len(prompts)} IFEval prompts, {args.max_new_tokens} new tokens, greedy, {args.rounds} rounds, "
          f"load {min(loads):.1f}-{max(loads):.1f}")
    print_table(table, "static", len(prompts))
    if alone is not None:
        print(f"static batch {args.static_batch} vs static batch 1: {agree(today, alone)}/{len(prompts)} same answers")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

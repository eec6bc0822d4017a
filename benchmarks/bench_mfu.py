"""Model FLOPs utilisation of full fine-tuning on a GPU, eager against `train.compile`.

Every row is max_length tokens of response (random words, one sample per row), so the step is
what the GPU's kernels make of a full batch: no padding, no short samples. Each variant is one
`run_training` call (loading, fused AdamW, autocast, checkpointless); per-step tokens/s come
from the loop's own step log. Steady state is the median of the steps after --warmup (the first
steps of a compiled run include its compilation); MFU scales the run's cost/mfu to that rate.

    python benchmarks/bench_mfu.py --model DIR --variants eager compile --steps 12 --out mfu.json
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.jsonl import write_jsonl
from mosaic_it.train.loop import StepLog
from mosaic_it.train.run import run_training

WORDS = "alpha beta gamma delta river stone light cloud paper table window garden".split()
VARIANTS = {"eager": {}, "compile": {"compile": True}, "recompute": {"gradient_checkpointing": True},
            "compile+recompute": {"compile": True, "gradient_checkpointing": True}}


def long_records(n: int, words: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [{"instruction": "Repeat.", "input": "", "output": " ".join(rng.choice(WORDS) for _ in range(words))}
            for _ in range(n)]


def run_variant(name: str, model: str, data: Path, work: Path, args: argparse.Namespace) -> dict:
    logs: list[StepLog] = []
    cfg = TrainConfig(model=model, data=str(data), arm="baseline", output_dir=str(work / name), method=args.method,
                      batching=args.batching, max_length=args.max_length, batch_size=args.batch_size,
                      max_steps=args.steps, save_every=0, resume="never", sample_max_new_tokens=0,
                      warmup_ratio=0.0, dtype="bf16", **{"gradient_checkpointing": False, **VARIANTS[name]})
    m = run_training(cfg, TrackingConfig(enabled=False), callbacks=[logs.append]).metrics
    steady = statistics.median(log.tokens_per_second for log in logs[args.warmup:])
    overall = m["throughput/tokens_per_second"]
    tokens_per_step = m["tokens/real"] / len(logs)
    return {"variant": name, "steps": len(logs), "tokens_per_step": tokens_per_step,
            "steady_tokens_per_s": steady, "overall_tokens_per_s": overall,
            "steady_mfu": m["cost/mfu"] * steady / overall if "cost/mfu" in m else None,
            "peak_gib": m["memory/peak_bytes"] / 2**30, "losses": [log.loss for log in logs],
            "warmup_step_s": [round(tokens_per_step / log.tokens_per_second, 2) for log in logs[:args.warmup]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--method", choices=("full", "lora"), default="full")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["eager", "compile"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--batching", choices=("dynamic", "packed"), default="dynamic",
                        help="packed: each micro-batch is one row of batch-size samples, attended per sample")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "long.jsonl"
        # a word is about two tokens here: rows are cut at max_length, so every row is full
        write_jsonl(data, long_records(args.batch_size * args.steps, args.max_length))
        for name in args.variants:
            row = run_variant(name, args.model, data, work, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                args.out.write_text(json.dumps(rows, indent=1))
    print("\n| variant | tokens/step | steady tokens/s | steady MFU | peak GiB | last loss |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['tokens_per_step']:,.0f} | {r['steady_tokens_per_s']:,.0f} | "
              f"{r['steady_mfu'] or 0:.1%} | {r['peak_gib']:.1f} | {r['losses'][-1]:.4f} |")


if __name__ == "__main__":
    main()

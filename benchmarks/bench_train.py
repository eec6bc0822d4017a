"""Training cost of plain instruction tuning vs Mosaic-IT on the same records, per batching regime.

baseline: the original records, --baseline-epochs passes.
mosaic:   one pass over mosaic samples made from the same records (the augment stage already
          repeats the records over its own epochs, --mosaic-epochs).
Every (arm, regime) pair is trained here, side by side, with the same model and settings, and the
table reports device-seconds, real and computed tokens, and the Mosaic/baseline ratios.

    python benchmarks/bench_train.py                             # make both files from the sample
    python benchmarks/bench_train.py --records R.jsonl --mosaics M.jsonl   # or bring your own

The default model is a random-init 2-layer Llama (hidden 64) with the embedded tokenizer: cost
here is about token counts and padding, which do not depend on the weights.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.jsonl import write_jsonl
from mosaic_it.train.data import load_records
from mosaic_it.train.run import run_training
from random_model import SIZES, random_model

REPO = Path(__file__).resolve().parents[1]
REGIMES = ("pad_to_max", "dynamic", "packed")


def make_inputs(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    records = work / "records.jsonl"
    write_jsonl(records, load_records(args.records or REPO / "data" / "alpaca_sample.json", args.n_records))
    if args.mosaics:
        return records, Path(args.mosaics)
    from mosaic_it.config.augment import AugmentConfig
    from mosaic_it.mosaic.augment import run_augment

    mosaics = work / "mosaic.jsonl"
    run_augment(AugmentConfig(input=str(records), output=str(mosaics), stats_dir=str(work / "stats"),
                              epochs=args.mosaic_epochs, max_tokens=args.max_length, seed=0))
    return records, mosaics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", help="records JSONL/JSON (default: the bundled sample)")
    parser.add_argument("--mosaics", help="mosaic samples made from --records (default: generate them)")
    parser.add_argument("--n-records", type=int, default=64)
    parser.add_argument("--baseline-epochs", type=float, default=3)
    parser.add_argument("--mosaic-epochs", type=int, default=4)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--model", help="train this model instead of a random-init one")
    parser.add_argument("--method", choices=("lora", "full"), default="full")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=REGIMES)
    parser.add_argument("--arms", nargs="+", default=["baseline", "mosaic"], choices=("baseline", "mosaic"))
    parser.add_argument("--max-steps", type=int, help="stop every run after this many optimizer steps")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="keep the fastest of this many runs per pair")
    parser.add_argument("--out", default="runs/bench_train/results.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        records, mosaics = make_inputs(args, work)
        model = args.model or str(random_model(args.size, work / "model"))
        arms = {"baseline": (records, args.baseline_epochs), "mosaic": (mosaics, 1.0)}
        arms = {arm: arms[arm] for arm in args.arms}

        def config(regime: str, arm: str, data: Path, epochs: float, max_steps: int | None) -> TrainConfig:
            return TrainConfig(model=model, data=str(data), arm=arm, output_dir=str(work / regime),
                               method=args.method, batching=regime, max_length=args.max_length,
                               batch_size=args.batch_size, epochs=epochs, max_steps=max_steps, save_every=0,
                               resume="never", sample_max_new_tokens=0, warmup_ratio=0.0,
                               gradient_checkpointing=args.gradient_checkpointing)

        def train(regime: str, arm: str, data: Path, epochs: float, max_steps: int | None = None) -> dict:
            return run_training(config(regime, arm, data, epochs, max_steps), TrackingConfig(enabled=False)).metrics

        train("dynamic", "warmup", mosaics, 1.0, max_steps=3)  # first-call kernel setup is nobody's cost
        results = []
        for regime in args.regimes:
            for arm, (data, epochs) in arms.items():
                started = time.perf_counter()
                runs = [train(regime, arm, data, epochs, args.max_steps) for _ in range(args.repeats)]
                m = min(runs, key=lambda r: r["cost/wall_seconds"])
                row = {"regime": regime, "arm": arm, "steps": int(m["train/steps"]), "samples": int(m["train/samples"]),
                       "device_seconds": m["cost/device_hours"] * 3600, "real_tokens": int(m["tokens/real"]),
                       "padded_tokens": int(m["tokens/padded"]), "padding_fraction": m["tokens/padding_fraction"],
                       "flops": m["cost/flops"], "tokens_per_second": m["throughput/tokens_per_second"],
                       "mfu": m.get("cost/mfu"), "peak_memory_bytes": m["memory/peak_bytes"],
                       "plan_peak_bytes": planned_peak(config(regime, arm, data, epochs, args.max_steps)),
                       "total_seconds": time.perf_counter() - started}
                results.append(row)
                print(json.dumps(row), flush=True)
    report = {"settings": vars(args), "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
              "machine": platform.platform(), "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
              "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render(results))


def planned_peak(cfg: TrainConfig) -> int:
    """The memory plan's worst-case peak (every micro-batch max_length long) for this run's device."""
    from mosaic_it.plan.estimate import estimate
    from mosaic_it.plan.fit import setup_from_config
    from mosaic_it.plan.shape import load_shape
    from mosaic_it.train.model import autocast_dtype

    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = autocast_dtype(cfg, torch.device(device)) is not None
    return estimate(load_shape(cfg.model), setup_from_config(cfg, device, bf16)).peak


def render(results: list[dict]) -> str:
    lines = ["| regime | arm | steps | device-s | real tokens | computed tokens | padding | real tokens/s | MFU | "
             "peak GiB (plan) | mosaic/baseline device-s | mosaic/baseline computed tokens |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    by = {(r["regime"], r["arm"]): r for r in results}
    for r in results:
        base = by.get((r["regime"], "baseline"))
        ratio_s = ratio_t = ""
        if r["arm"] == "mosaic" and base:
            ratio_s = f"{r['device_seconds'] / base['device_seconds']:.2f}"
            ratio_t = f"{r['padded_tokens'] / base['padded_tokens']:.2f}"
        lines.append(f"| {r['regime']} | {r['arm']} | {r['steps']} | {r['device_seconds']:.1f} | {r['real_tokens']:,} | "
                     f"{r['padded_tokens']:,} | {r['padding_fraction']:.1%} | {r['tokens_per_second']:,.0f} | "
                     f"{'' if r['mfu'] is None else format(r['mfu'], '.1%')} | "
                     f"{r['peak_memory_bytes'] / 2**30:.1f} ({r['plan_peak_bytes'] / 2**30:.1f}) | {ratio_s} | {ratio_t} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

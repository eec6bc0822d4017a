"""Training throughput of `mosaic-it train` against TRL's SFTTrainer on identical inputs.

Both sides train the same model (fp32, sdpa attention) with the same LoRA adapters, AdamW,
learning rate, clipping, seed and number of steps, and see the very same micro-batches in the
same order: the samples are encoded and planned once by our core (train.data.encode_all,
train.batching.plan_steps, exactly as `mosaic-it train` does), and TRL is fed that plan as a
pre-tokenized dataset read in order (`skip_prepare_dataset`, sequential sampler):

- dynamic: one TRL row per sample, `per_device_train_batch_size` = our batch size; TRL's
  collator pads each micro-batch to its longest sample, as ours does.
- packed:  one TRL row per packed micro-batch (`packing=True`, `seq_lengths` = the samples'
  lengths, batch size 1), so TRL's padding-free path gets the same row and position ids as ours
  and its own best-fit packer never regroups the samples.

Our side is `mosaic_it.train.run.run_training`, the function behind `mosaic-it train`.
Every run is a fresh process (so peak RSS is its own); runs alternate ours, TRL, ours, TRL, ...
and the best of --repeats is kept per side and regime. Throughput is real (non-pad) tokens of
steps 2..N over the time from the end of step 1 to the end of step N, so loading and the first
step's one-off setup count for neither side. The per-step losses of both sides are compared.

    python benchmarks/bench_train_vs_trl.py                 # embedded SmolLM2-135M, LoRA
    python benchmarks/bench_train_vs_trl.py --size tiny     # random-init 2-layer Llama (head-bound)
    python benchmarks/bench_train_vs_trl.py --profile DIR   # torch.profiler operator tables instead

Needs the `bench` extra (pip install -e '.[bench]').
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from random_model import SIZES, random_model  # noqa: E402

REGIMES = ("dynamic", "packed")
LOSS_TOLERANCE = 1e-4  # absolute, per step; fp32 on both sides, different kernels for the head
CHILD_ENV = {"TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"}


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def train_config(spec: dict, regime: str):
    from mosaic_it.config.train import LoraSettings, TrainConfig

    return TrainConfig(model=spec["model"], data=spec["data"], arm="baseline", output_dir=spec["out"],
                       method="lora", lora=LoraSettings(dropout=0.0), batching=regime,
                       max_length=spec["max_length"], batch_size=spec["batch_size"], max_steps=spec["steps"],
                       learning_rate=2e-4, lr_scheduler="constant", warmup_ratio=0.0, max_grad_norm=1.0,
                       weight_decay=0.0, gradient_checkpointing=False, dtype="fp32", attn_implementation="sdpa",
                       device="cpu", save_every=0, resume="never", sample_max_new_tokens=0, seed=0)


def planned(spec: dict, regime: str) -> tuple[list, list]:
    """The encoded samples and the micro-batches of every step, as run_training makes them."""
    from mosaic_it.models.tokenizer import load_tokenizer
    from mosaic_it.train.batching import plan_steps
    from mosaic_it.train.data import encode_all, load_records

    cfg = train_config(spec, regime)
    tokenizer = load_tokenizer(cfg.model)
    examples, _ = encode_all(load_records(cfg.data), tokenizer, cfg.prompt_format, cfg.max_length)
    steps = plan_steps([len(e) for e in examples], cfg.batch_size, cfg.grad_accum, 1, cfg.seed,
                       cfg.group_by_length, cfg.epochs, cfg.max_steps)
    return examples, steps


def step_tokens(spec: dict, regime: str) -> list[int]:
    examples, steps = planned(spec, regime)
    return [sum(len(examples[i]) for micro in step for i in micro) for step in steps]


def run_ours(spec: dict, regime: str) -> dict:
    from mosaic_it.config.tracking import TrackingConfig
    from mosaic_it.train.run import run_training

    ends: list[float] = []
    cpu: list[float] = []
    rss: list[int] = []

    def on_step(_log) -> None:
        ends.append(time.perf_counter())
        cpu.append(time.process_time())
        if not rss:
            rss.append(_status_bytes("VmRSS"))

    result = run_training(train_config(spec, regime), TrackingConfig(enabled=False), callbacks=[on_step])
    return {"losses": result.losses, "step_ends": ends, "step_cpu": cpu, "step_tokens": step_tokens(spec, regime),
            "rss_after_step1": rss[0]}


def trl_dataset(spec: dict, regime: str):
    from datasets import Dataset

    examples, steps = planned(spec, regime)
    micro = [m for step in steps for m in step]
    if regime == "packed":
        rows = [{"input_ids": [t for i in m for t in examples[i].input_ids],
                 "labels": [t for i in m for t in examples[i].labels],
                 "seq_lengths": [len(examples[i]) for i in m]} for m in micro]
    else:
        if any(len(m) != spec["batch_size"] for m in micro):
            raise SystemExit("a micro-batch is short: use a sample count divisible by --batch-size")
        rows = [{"input_ids": examples[i].input_ids, "labels": examples[i].labels} for m in micro for i in m]
    return Dataset.from_list(rows), len(steps)


def run_trl(spec: dict, regime: str) -> dict:
    import torch
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from mosaic_it.models.embedded import resolve_model_path
    from mosaic_it.models.tokenizer import load_tokenizer

    cfg = train_config(spec, regime)
    dataset, n_steps = trl_dataset(spec, regime)
    ends: list[float] = []
    cpu: list[float] = []
    rss: list[int] = []
    tokens: list[int] = []
    losses: list[float] = []

    class Recording(SFTTrainer):
        def training_step(self, *args, **kwargs):
            loss = super().training_step(*args, **kwargs)
            losses.append(float(loss))
            return loss

    class StepEnds(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())
            cpu.append(time.process_time())
            tokens.append(trainer._total_train_tokens - sum(tokens))
            if not rss:
                rss.append(_status_bytes("VmRSS"))

    args = SFTConfig(
        output_dir=str(Path(spec["out"]) / "trl"), per_device_train_batch_size=1 if regime == "packed" else cfg.batch_size,
        gradient_accumulation_steps=1, max_steps=n_steps, learning_rate=cfg.learning_rate, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, max_grad_norm=cfg.max_grad_norm, optim="adamw_torch", seed=cfg.seed,
        gradient_checkpointing=False, bf16=False, fp16=False, use_cpu=True, report_to="none", save_strategy="no",
        train_sampling_strategy="sequential", dataset_kwargs={"skip_prepare_dataset": True},
        packing=regime == "packed", max_length=cfg.max_length, disable_tqdm=True,
        model_init_kwargs={"dtype": torch.float32, "attn_implementation": "sdpa"})
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")
    trainer = Recording(model=str(resolve_model_path(cfg.model)), args=args, train_dataset=dataset,
                        processing_class=load_tokenizer(cfg.model), peft_config=lora, callbacks=[StepEnds()])
    trainer.train()
    return {"losses": losses, "step_ends": ends, "step_cpu": cpu, "step_tokens": tokens, "rss_after_step1": rss[0]}


def child(side: str, regime: str, spec: dict) -> None:
    train = run_ours if side == "ours" else run_trl
    if not spec.get("profile"):
        result = train(spec, regime)
    else:  # where the time goes, by operator (loading included; the steps dominate)
        from torch.profiler import ProfilerActivity, profile

        from mosaic_it.atomic import write_text

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            result = train(spec, regime)
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
        write_text(Path(spec["profile"]) / f"{side}-{regime}.txt", table)
    result["peak_rss"] = _status_bytes("VmHWM")
    print("RESULT " + json.dumps(result), flush=True)


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(side: str, regime: str, spec: dict, threads: int) -> dict:
    before = load_avg()
    command = [sys.executable, __file__, "--child", side, regime, json.dumps(spec)]
    env = {**os.environ, **CHILD_ENV, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
    ends, tokens = result["step_ends"], result["step_tokens"]
    seconds = ends[-1] - ends[0]
    result.update(side=side, regime=regime, load_before=before, load_after=load_avg(),
                  timed_steps=len(ends) - 1, timed_tokens=sum(tokens[1:]), timed_seconds=seconds,
                  tokens_per_second=sum(tokens[1:]) / seconds,
                  tokens_per_cpu_second=sum(tokens[1:]) / (result["step_cpu"][-1] - result["step_cpu"][0]))
    return result


def prepare(args: argparse.Namespace, work: Path) -> dict:
    from mosaic_it.config.augment import AugmentConfig
    from mosaic_it.jsonl import iter_jsonl, write_jsonl
    from mosaic_it.mosaic.augment import run_augment
    from mosaic_it.train.data import load_records

    records = work / "records.jsonl"
    write_jsonl(records, load_records(REPO / "data" / "alpaca_sample.json", args.n_records))
    data = records
    if args.data == "mosaic":
        data = work / "mosaic.jsonl"
        run_augment(AugmentConfig(input=str(records), output=str(data), stats_dir=str(work / "stats"),
                                  epochs=4, max_tokens=args.max_length, seed=0))
    rows = list(iter_jsonl(data))
    keep = len(rows) - len(rows) % args.batch_size  # full micro-batches only: TRL's batches must line up with ours
    write_jsonl(work / "train.jsonl", rows[:keep])
    model = args.model or (str(random_model(args.size, work / "model")) if args.size else None)
    return {"model": model, "data": str(work / "train.jsonl"), "out": str(work / "out"), "steps": args.steps,
            "batch_size": args.batch_size, "max_length": args.max_length}


def best(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["tokens_per_second"])


def summarize(results: list[dict]) -> list[dict]:
    rows = []
    for regime in dict.fromkeys(r["regime"] for r in results):
        sides = {side: [r for r in results if r["regime"] == regime and r["side"] == side] for side in ("ours", "trl")}
        ours, trl = best(sides["ours"]), best(sides["trl"])
        diffs = [abs(a - b) for run in sides["ours"] for other in sides["trl"]
                 for a, b in zip(run["losses"], other["losses"])]
        rows.append({
            "regime": regime, "n": len(sides["ours"]), "steps": len(ours["losses"]),
            "timed_tokens": ours["timed_tokens"], "same_tokens": ours["step_tokens"] == trl["step_tokens"],
            "ours_tps": [r["tokens_per_second"] for r in sides["ours"]],
            "trl_tps": [r["tokens_per_second"] for r in sides["trl"]],
            "ratio": ours["tokens_per_second"] / trl["tokens_per_second"],
            "ours_tpcs": [r["tokens_per_cpu_second"] for r in sides["ours"]],
            "trl_tpcs": [r["tokens_per_cpu_second"] for r in sides["trl"]],
            "cpu_ratio": max(r["tokens_per_cpu_second"] for r in sides["ours"])
            / max(r["tokens_per_cpu_second"] for r in sides["trl"]),
            "ours_peak_rss_mb": min(r["peak_rss"] for r in sides["ours"]) / 2**20,
            "trl_peak_rss_mb": min(r["peak_rss"] for r in sides["trl"]) / 2**20,
            "max_loss_diff": max(diffs), "losses_match": max(diffs) <= LOSS_TOLERANCE,
            "loads": [(r["side"], r["load_before"], r["load_after"]) for r in sides["ours"] + sides["trl"]],
        })
    return rows


def render(rows: list[dict]) -> str:
    lines = ["| regime | n | timed steps | timed real tokens | tokens/s ours, best (all) | tokens/s TRL, best (all) | "
             "ours / TRL | tokens/CPU-s ours, best (all) | tokens/CPU-s TRL, best (all) | ours / TRL (CPU) | "
             "peak RSS ours / TRL | max per-step loss diff |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spread = lambda xs: f"**{max(xs):.0f}** ({', '.join(f'{x:.0f}' for x in xs)})"  # noqa: E731
        lines.append(f"| {r['regime']} | {r['n']} | {r['steps'] - 1} | {r['timed_tokens']:,} | {spread(r['ours_tps'])} | "
                     f"{spread(r['trl_tps'])} | **{r['ratio']:.2f}x** | {spread(r['ours_tpcs'])} | "
                     f"{spread(r['trl_tpcs'])} | **{r['cpu_ratio']:.2f}x** | {r['ours_peak_rss_mb']:.0f} / "
                     f"{r['trl_peak_rss_mb']:.0f} MiB | {r['max_loss_diff']:.1e} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local model to train (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--size", choices=sorted(SIZES), help="train a random-init Llama of this shape instead")
    parser.add_argument("--data", choices=("mosaic", "records"), default="mosaic")
    parser.add_argument("--n-records", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=REGIMES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per run (1: a shared machine's other jobs cannot stall a thread barrier)")
    parser.add_argument("--out", default="runs/bench_train_vs_trl/results.json")
    parser.add_argument("--profile", help="instead of timing: one profiled run per side and regime, tables into this folder")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = prepare(args, Path(tmp))
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            for regime in args.regimes:
                for side in ("ours", "trl"):
                    measure(side, regime, {**spec, "profile": str(Path(args.profile).resolve())}, args.threads)
            print(f"operator tables in {args.profile}")
            return
        for repeat in range(args.repeats):
            for regime in args.regimes:
                for side in ("ours", "trl"):
                    result = measure(side, regime, spec, args.threads)
                    results.append(result)
                    print(f"{regime} {side} #{repeat + 1}: {result['tokens_per_second']:.0f} tokens/s, "
                          f"{result['tokens_per_cpu_second']:.0f} tokens/CPU-s, "
                          f"peak RSS {result['peak_rss'] / 2**20:.0f} MiB, load {result['load_before']} -> "
                          f"{result['load_after']}", flush=True)
    rows = summarize(results)
    import torch
    import trl

    report = {"settings": vars(args), "torch": torch.__version__, "trl": trl.__version__,
              "threads_per_run": args.threads, "machine": platform.platform(), "cpus": os.cpu_count(),
              "loss_tolerance": LOSS_TOLERANCE, "summary": rows, "runs": results}
    from mosaic_it.jsonl import write_json

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, report)
    print(render(rows))
    if not all(r["losses_match"] and r["same_tokens"] for r in rows):
        raise SystemExit(f"per-step losses differ by more than {LOSS_TOLERANCE} or the batches differ")


if __name__ == "__main__":
    main()

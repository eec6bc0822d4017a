"""The memory plan's estimate against measured peak memory, on models this machine can train.

Each configuration runs in a fresh process: it first loads the model and takes one step, then
frees them (a warm-up, so that code and library state loaded on first use, which hold no tensor,
are resident before the baseline), reads its resident set size (RSS), loads the model and
optimizer exactly as `mosaic-it train` does, resets the kernel's peak-RSS mark (`echo 5 >
/proc/self/clear_refs`, so loading transients such as the safetensors mmap do not count), runs
three optimizer steps on micro-batches of random token ids (every sample max_length long, loss
on every token) and reads the peak back (VmHWM).
measured = peak RSS - RSS of the warm process before loading; it is compared with
`estimate(...).peak` for a CPU device (no CUDA context, no allocator fragmentation). Linux only;
one thread per process.

With --device cuda (bf16 autocast, LoRA bases in bf16) the measured figures are the allocator's:
torch.cuda.max_memory_allocated over loading and the steps (compared with the estimate less its
CUDA overhead), and max_memory_reserved plus the CUDA context measured before loading (compared
with the whole estimate: what the GPU must hold).

    python benchmarks/bench_memory_plan.py            # tiny Llama + embedded 135M table
    python benchmarks/bench_memory_plan.py --device cuda --model 1b=DIR --model 8b=DIR
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

MIB = 1024 ** 2
CASES = [  # model, method, batch, max_length, gradient checkpointing, batching
    ("tiny", "full", 4, 512, False, "dynamic"),
    ("tiny", "lora", 4, 512, False, "dynamic"),
    ("tiny", "full", 8, 256, False, "packed"),
    ("tiny", "full", 4, 512, True, "dynamic"),
    ("135m", "lora", 2, 256, False, "dynamic"),
    ("135m", "full", 2, 256, False, "dynamic"),
    ("135m", "lora", 4, 256, True, "packed"),
]
GPU_CASES = [
    ("1b", "full", 8, 2048, False, "packed"),
    ("1b", "lora", 8, 2048, False, "packed"),
    ("8b", "lora", 4, 2048, False, "packed"),
    ("8b", "lora", 8, 2048, True, "packed"),
]
# Shapes and settings the plan's constants were not fitted to (GPU_CASES were): an independent check.
GPU_CHECK_CASES = [
    ("3b", "lora", 8, 2048, False, "dynamic"),
    ("3b", "full", 2, 2048, True, "packed"),
    ("1b", "full", 16, 1024, True, "dynamic"),
    ("1b", "lora", 16, 2048, True, "packed"),
]
# glibc's malloc keeps freed blocks under its mmap threshold for reuse, so RSS would also count
# memory no tensor holds; a low threshold makes tensor buffers mmaps that free returns at once,
# so the peak RSS tracks live tensors (what torch.cuda.max_memory_allocated reports on a GPU).
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "TOKENIZERS_PARALLELISM": "false"}


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def make_tiny(target: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from mosaic_it.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(None)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=4, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(target, safe_serialization=True)
    return target


def warm(cfg, device: torch.device, batch) -> None:
    import gc

    from mosaic_it.train.loop import sum_loss
    from mosaic_it.train.model import load_model
    from mosaic_it.train.optim import make_optimizer

    model = load_model(cfg, device, None)
    optimizer = make_optimizer(model, cfg)
    model.train()
    sum_loss(model, batch, device, None).backward()
    optimizer.step()
    del model, optimizer
    gc.collect()


def measure_one(case: dict) -> dict:
    from mosaic_it.config.train import TrainConfig
    from mosaic_it.plan.estimate import estimate
    from mosaic_it.plan.fit import setup_from_config
    from mosaic_it.plan.shape import load_shape
    from mosaic_it.train.batching import collate
    from mosaic_it.train.data import Example
    from mosaic_it.train.loop import sum_loss
    from mosaic_it.train.model import load_model
    from mosaic_it.train.optim import make_optimizer

    torch.manual_seed(0)
    torch.set_num_threads(1)
    device = torch.device(case.get("device", "cpu"))
    cuda = device.type == "cuda"
    amp = torch.bfloat16 if cuda else None
    cfg = TrainConfig(model=case["model_dir"], method=case["method"], batch_size=case["batch"],
                      max_length=case["max_length"], gradient_checkpointing=case["gc"], batching=case["batching"],
                      dtype="bf16" if cuda else "fp32", device=device.type)
    vocab = load_shape(cfg.model).vocab
    examples = [Example(ids, list(ids)) for ids in torch.randint(0, vocab, (cfg.batch_size, cfg.max_length)).tolist()]
    batch = collate(examples, cfg.batching, cfg.max_length, 0)
    extra = {}
    if cuda:
        torch.zeros(1, device=device)  # creates the context, whose size the allocator never sees
        free, total = torch.cuda.mem_get_info(device)
        extra["context"] = total - free
    else:
        # A first load and step, thrown away: code, library state and kernels that load lazily on
        # first use stay resident but are no tensor's memory (the plan counts tensors, as
        # max_memory_allocated does on a GPU); measured from a warm process, they drop out.
        start = _status("VmRSS")
        warm(cfg, device, batch)
        before = _status("VmRSS")
        extra["warm_residue"] = before - start
    model = load_model(cfg, device, amp)
    optimizer = make_optimizer(model, cfg)
    model.train()
    if not cuda:
        Path("/proc/self/clear_refs").write_text("5")
    for _ in range(3):
        (sum_loss(model, batch, device, amp) / batch.target_tokens).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if cuda:
        measured = torch.cuda.max_memory_allocated(device)
        extra["reserved"] = torch.cuda.max_memory_reserved(device)
    else:
        measured = _status("VmHWM") - before
    setup = dataclasses.replace(setup_from_config(cfg, device.type, cuda), tokens=batch.real_tokens,
                                target_tokens=batch.target_tokens)
    plan = estimate(load_shape(cfg.model), setup)
    return {**case, "measured": measured, **extra, **plan.as_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                        help="with --device cuda: the model directory of each GPU case's shape (1b, 3b, 8b)")
    parser.add_argument("--out", type=Path, help="also write every row as JSON lines here")
    parser.add_argument("--cases", choices=("fit", "check"), default="fit",
                        help="with --device cuda: the cases the plan was fitted to, or the held-out ones (1b, 3b)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one))))
        return
    if args.device == "cuda":
        dirs = dict(item.split("=", 1) for item in args.model)
        run_cases(GPU_CASES if args.cases == "fit" else GPU_CHECK_CASES, dirs, "cuda", args.out)
        return
    from mosaic_it.models.embedded import resolve_model_path

    with tempfile.TemporaryDirectory() as tmp:
        dirs = {"tiny": str(make_tiny(Path(tmp) / "tiny")), "135m": resolve_model_path(None)}
        run_cases(CASES, dirs, "cpu", args.out)


def run_cases(cases: list[tuple], dirs: dict[str, str], device: str, out: Path | None) -> None:
    cuda = device == "cuda"
    if cuda:
        print("| model | method | batch x length | regime | grad ckpt | estimate GiB | context + reserved GiB | error "
              "| estimate less overhead GiB | max allocated GiB | error |")
        print("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    else:
        print("| model | method | batch x length | regime | grad ckpt | estimate MiB | measured MiB | error |")
        print("|---|---|---|---|---|---:|---:|---:|")
    for model, method, batch, length, gc, batching in cases:
        if model not in dirs:
            print(f"(skipped {model}: no --model {model}=DIR)")
            continue
        case = dict(model_dir=dirs[model], method=method, batch=batch, max_length=length, gc=gc,
                    batching=batching, device=device)
        done = subprocess.run([sys.executable, __file__, "--one", json.dumps(case)],
                              capture_output=True, text=True, env={**os.environ, **CHILD_ENV})
        if done.returncode != 0:
            print(f"| {model} | {method} | {batch} x {length} | {batching} | {'yes' if gc else 'no'} | failed: "
                  f"{(done.stderr.strip().splitlines() or ['?'])[-1][:200]} |", flush=True)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        if out is not None:
            with out.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        if cuda:
            gib = 1024 ** 3
            device_total = row["context"] + row["reserved"]
            allocated_plan = row["peak"] - row["overhead"]
            print(f"| {model} | {method} | {batch} x {length} | {batching} | {'yes' if gc else 'no'} | "
                  f"{row['peak'] / gib:.1f} | {device_total / gib:.1f} | {row['peak'] / device_total - 1:+.1%} | "
                  f"{allocated_plan / gib:.1f} | {row['measured'] / gib:.1f} | "
                  f"{allocated_plan / row['measured'] - 1:+.1%} |", flush=True)
            continue
        error = row["peak"] / row["measured"] - 1
        print(f"| {model} | {method} | {batch} x {length} | {batching} | {'yes' if gc else 'no'} | "
              f"{row['peak'] / MIB:.0f} | {row['measured'] / MIB:.0f} | {error:+.1%} |", flush=True)


if __name__ == "__main__":
    main()

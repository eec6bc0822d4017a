"""The recorded H200 memory-plan rows, re-planned with the formula before (BASE) and now (working tree).

Run from the repository root: python benchmarks/results/cpu-2026-11-26-memplan/gpu_rows.py BASE
(BASE: the commit whose mosaic_it/plan/estimate.py is the "before" formula). The measured figures
are the ones the H200 recorded (plan.jsonl: the rows the formula was fitted to; plan_check.jsonl:
held-out rows); the setups are rebuilt as bench_memory_plan.py built them (same collate, so the
same real and target token counts).
"""
import dataclasses
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from mosaic_it.config.train import TrainConfig
from mosaic_it.plan import estimate as new
from mosaic_it.plan.fit import setup_from_config
from mosaic_it.plan.shape import shape_from_config
from mosaic_it.train.batching import collate
from mosaic_it.train.data import Example

SHAPES = {  # hidden, intermediate, layers, heads, kv heads, vocab, tied (benchmarks/random_model.py)
    "1b": (2048, 8192, 16, 32, 8, 128256, True), "3b": (3072, 8192, 28, 24, 8, 128256, True),
    "8b": (4096, 14336, 32, 32, 8, 128256, False)}
GIB = 2 ** 30

source = subprocess.run(["git", "show", f"{sys.argv[1]}:mosaic_it/plan/estimate.py"], capture_output=True,
                        text=True, check=True).stdout
with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
    handle.write(source)
spec = importlib.util.spec_from_file_location("old_estimate", handle.name)
old = importlib.util.module_from_spec(spec)
sys.modules["old_estimate"] = old
spec.loader.exec_module(old)

print("| rows | model | method | batch x length | grad ckpt | max allocated GiB | old plan less overhead GiB | "
      "error | new plan less overhead GiB | error | context + reserved GiB | old plan GiB | error | "
      "new plan GiB | error |")
print("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in ("h200-2026-11-26/plan.jsonl", "h200-2026-11-26b/plan_check.jsonl"):
    for line in (Path("benchmarks/results") / name).read_text().splitlines():
        row = json.loads(line)
        key = Path(row["model_dir"]).name
        h, i, layers, heads, kv, vocab, tied = SHAPES[key]
        shape = shape_from_config(dict(vocab_size=vocab, hidden_size=h, intermediate_size=i, num_hidden_layers=layers,
                                       num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=tied))
        cfg = TrainConfig(model=row["model_dir"], method=row["method"], batch_size=row["batch"],
                          max_length=row["max_length"], gradient_checkpointing=row["gc"], batching=row["batching"],
                          dtype="bf16", device="cuda")
        ids = torch.randint(0, 1000, (cfg.batch_size, cfg.max_length)).tolist()
        batch = collate([Example(r, list(r)) for r in ids], cfg.batching, cfg.max_length, 0)
        setup = dataclasses.replace(setup_from_config(cfg, "cuda", True), tokens=batch.real_tokens,
                                    target_tokens=batch.target_tokens)
        before = old.estimate(shape, old.Setup(**dataclasses.asdict(setup)))
        after = new.estimate(shape, setup)
        measured = row["measured"]
        cells = []
        for plan in (before, after):
            allocated = plan.peak - plan.overhead
            cells += [f"{allocated / GIB:.1f}", f"{allocated / measured - 1:+.1%}"]
        device_total = row["context"] + row["reserved"]
        cells.append(f"{device_total / GIB:.1f}")
        for plan in (before, after):
            cells += [f"{plan.peak / GIB:.1f}", f"{plan.peak / device_total - 1:+.1%}"]
        print(f"| {'fitted' if 'check' not in name else 'held out'} | {key} | {row['method']} | "
              f"{row['batch']} x {row['max_length']} | {'yes' if row['gc'] else 'no'} | {measured / GIB:.1f} | "
              + " | ".join(cells) + " |")

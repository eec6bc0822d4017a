"""GPU profile: launch latency, matmul rate, 1B full step anatomy (foreach vs fused AdamW), generation."""
import json, os, sys, time, random, tempfile
from pathlib import Path
import torch

out = Path(os.environ.get("OUT", "/tmp")); work = Path(sys.argv[1])
dev = torch.device("cuda")
x = torch.zeros(16, device=dev); torch.cuda.synchronize()
n = 20000; t = time.perf_counter()
for _ in range(n): x.add_(1)
torch.cuda.synchronize(); launch_us = (time.perf_counter() - t) / n * 1e6
a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16); b = torch.randn_like(a)
for _ in range(3): a @ b
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(10): a @ b
torch.cuda.synchronize(); tflops = 10 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12
print(json.dumps({"launch_us": launch_us, "matmul_tflops": tflops}), flush=True)
del a, b

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.jsonl import write_jsonl
import mosaic_it.train.run as run_mod
import mosaic_it.train.optim as optim_mod

random.seed(0)
words = "alpha beta gamma delta river stone light cloud paper table window garden".split()
def text(k): return " ".join(random.choice(words) for _ in range(k))
records = [{"instruction": text(200), "input": "", "output": text(1500)} for _ in range(160)]
data = work / "long.jsonl"; write_jsonl(data, records)
model = str(work / "1b")
orig = optim_mod.make_optimizer
def fused(model, cfg):
    opt = orig(model, cfg)
    return torch.optim.AdamW(opt.param_groups, lr=cfg.learning_rate, fused=True)
results = []
for name, regime, opt in (("dynamic-foreach", "dynamic", orig), ("dynamic-fused", "dynamic", fused)):
    run_mod.make_optimizer = opt
    cfg = TrainConfig(model=model, data=str(data), arm="baseline", output_dir=str(work / name), method="full",
                      batching=regime, max_length=2048, batch_size=8, max_steps=10, save_every=0, resume="never",
                      sample_max_new_tokens=0, warmup_ratio=0.0, gradient_checkpointing=False)
    m = run_mod.run_training(cfg, TrackingConfig(enabled=False)).metrics
    row = {"name": name, "tokens_per_step": m["tokens/real"] / m["train/steps"], "tokens_per_second": m["throughput/tokens_per_second"],
           "mfu": m.get("cost/mfu"), "peak_gib": m["memory/peak_bytes"] / 2**30}
    results.append(row); print(json.dumps(row), flush=True)

# anatomy of one step: profiler over 3 steps of the fused dynamic run
from mosaic_it.train.model import load_model
from mosaic_it.train.loop import sum_loss
from mosaic_it.train.batching import collate
from mosaic_it.train.data import Example
cfg = TrainConfig(model=model, method="full", batch_size=8, max_length=2048, gradient_checkpointing=False, dtype="bf16")
net = load_model(cfg, dev, torch.bfloat16); opt = fused(net, cfg)
ids = torch.randint(0, 40000, (8, 2048)).tolist()
batch = collate([Example(r, list(r)) for r in ids], "dynamic", 2048, 0)
def step():
    (sum_loss(net, batch, dev, torch.bfloat16) / batch.target_tokens).backward()
    torch.nn.utils.clip_grad_norm_([p for p in net.parameters()], 1.0)
    opt.step(); opt.zero_grad(set_to_none=True)
for _ in range(2): step()
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(3): step()
torch.cuda.synchronize(); wall = (time.perf_counter() - t) / 3
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    step(); torch.cuda.synchronize()
events = prof.key_averages()
cuda_total = sum(e.self_device_time_total for e in events) / 1e6
launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx"))
flops = 6 * sum(p.numel() for p in net.parameters()) * 8 * 2048
print(json.dumps({"synthetic_step_s": wall, "gpu_busy_s": cuda_total, "kernel_launches": launches,
                  "tokens_per_s": 8 * 2048 / wall, "approx_mfu_6N": flops / wall / 989e12}), flush=True)
print(events.table(sort_by="self_cuda_time_total", row_limit=12), flush=True)
print(events.table(sort_by="self_cpu_time_total", row_limit=12), flush=True)

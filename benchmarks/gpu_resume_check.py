"""A run SIGKILLed mid-way on CUDA resumes to the end an uninterrupted run reaches.

tests/test_train_loop.py checks this on CPU. On CUDA the optimizer is fused AdamW
(train/optim.py) and the run is under bf16 autocast, so this script repeats the check there:
for each method, an uninterrupted run twice (GPU kernels need not be bitwise repeatable, so
the two give the noise floor) and a run killed after step 5 then resumed from its step-4
checkpoint. It prints the largest loss and weight differences of each pair, as JSON.

    python benchmarks/gpu_resume_check.py /tmp/tiny-model --out resume.json
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.jsonl import write_jsonl
from mosaic_it.train.data import load_records
from mosaic_it.train.run import run_training

REPO = Path(__file__).resolve().parents[1]
KILLER = """
import os, signal, sys
from mosaic_it.config.train import TrainConfig
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.train.run import run_training

def die(log):
    if log.step == 5:
        os.kill(os.getpid(), signal.SIGKILL)

run_training(TrainConfig.model_validate_json(sys.argv[1]), TrackingConfig(enabled=False), callbacks=[die])
"""


def weights(result) -> dict[str, torch.Tensor]:
    files = sorted(result.model_dir.glob("*.safetensors"))
    return {k: v for f in files for k, v in load_file(f).items()}


def differences(a, b) -> dict[str, float]:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    return {"loss": max(abs(x - y) for x, y in zip(a.losses, b.losses)),
            "weight": max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)}


def check(method: str, model: str, data: Path, work: Path, device: str) -> dict:
    def cfg(name: str) -> TrainConfig:
        return TrainConfig(model=model, data=str(data), output_dir=str(work / method / name), method=method,
                           max_length=256, batch_size=4, max_steps=8, save_every=2, learning_rate=5e-3,
                           warmup_ratio=0.0, sample_max_new_tokens=0, dtype="bf16", device=device,
                           lora={"r": 4, "dropout": 0.2})
    straight = run_training(cfg("straight"), TrackingConfig(enabled=False))
    again = run_training(cfg("again"), TrackingConfig(enabled=False))
    killed = cfg("killed")
    proc = subprocess.run([sys.executable, "-c", KILLER, killed.model_dump_json()], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    checkpoints = sorted(p.name for p in (work / method / "killed" / "baseline" / "checkpoints").glob("step-*"))
    resumed = run_training(killed, TrackingConfig(enabled=False))
    return {"method": method, "checkpoints_left_by_kill": checkpoints, "steps": len(resumed.losses),
            "straight_vs_again": differences(straight, again), "straight_vs_resumed": differences(straight, resumed),
            "losses_straight": straight.losses, "losses_resumed": resumed.losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.jsonl"
        write_jsonl(data, load_records(REPO / "data" / "alpaca_sample.json", 32))
        for method in ("full", "lora"):
            rows.append(check(method, args.model, data, Path(tmp), args.device))
            print(json.dumps(rows[-1]), flush=True)
            if args.out:
                args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""Two CPU processes under torchrun (gloo): disjoint data, identical weights, the single-process result."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.jsonl import write_jsonl
from mosaic_it.train.data import load_records
from mosaic_it.train.run import run_training

# Runs on every rank; records what each rank actually fed the model and its final weights.
WORKER = """
import json, os, sys
import mosaic_it.train.loop as loop
import mosaic_it.train.run as run
from safetensors.torch import save_file
from mosaic_it.config.train import TrainConfig
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.train.checkpoint import trainable_state

out = sys.argv[2]
rank = int(os.environ["RANK"])
seen = []
real_collate = loop.collate
def recording_collate(examples, *args):
    seen.extend(json.dumps(e.input_ids) for e in examples)
    return real_collate(examples, *args)
loop.collate = recording_collate

real_loop = run.train_loop
def saving_loop(**kwargs):
    counters = real_loop(**kwargs)
    save_file(trainable_state(kwargs["model"].module), f"{out}/weights-{rank}.safetensors")
    return counters
run.train_loop = saving_loop

result = run.run_training(TrainConfig.model_validate_json(sys.argv[1]), TrackingConfig(enabled=False))
json.dump({"seen": seen, "losses": result.losses, "metrics": result.metrics}, open(f"{out}/rank-{rank}.json", "w"))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_train_like_one_with_gradient_accumulation(tmp_path, tiny_llama_dir, sample_data, repo_root):
    data = tmp_path / "train.jsonl"
    write_jsonl(data, load_records(sample_data, max_records=16))
    common = dict(model=str(tiny_llama_dir), data=str(data), method="full", max_length=96, batch_size=2,
                  max_steps=4, learning_rate=1e-2, warmup_ratio=0.0, sample_max_new_tokens=0, device="cpu")
    ddp_cfg = TrainConfig(output_dir=str(tmp_path / "ddp"), **common)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER, encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(worker), ddp_cfg.model_dump_json(), str(tmp_path)]
    proc = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]

    # Each rank saw its own half of every step: 4 steps x 2 samples each, no sample on both.
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 8
    assert not set(ranks[0]["seen"]) & set(ranks[1]["seen"])
    # Gradients were averaged: both ranks end with the same weights and report the same losses.
    w0, w1 = (load_file(tmp_path / f"weights-{r}.safetensors") for r in (0, 1))
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    assert ranks[0]["losses"] == ranks[1]["losses"]
    losses = ranks[0]["losses"]
    assert all(loss == loss for loss in losses) and losses[-1] < losses[0]
    # And the pair matches one process accumulating the same two micro-batches per step.
    single = run_training(TrainConfig(output_dir=str(tmp_path / "single"), grad_accum=2, **common),
                          TrackingConfig(enabled=False))
    assert losses == pytest.approx(single.losses, abs=1e-4)
    assert ranks[0]["metrics"]["tokens/real"] == single.metrics["tokens/real"]
    saved = load_file(tmp_path / "ddp" / "baseline" / "model" / "model.safetensors")
    assert torch.allclose(saved["model.norm.weight"], w0["model.norm.weight"])

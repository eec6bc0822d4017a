"""FSDP2 sharding (train.distributed=fsdp): two gloo CPU processes train like one, a killed sharded run
resumes exactly, the consolidated model is the gathered state in the usual layout, and sharded
checkpoints are safetensors + JSON that any world size reads."""
from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.train.checkpoint import list_checkpoints, load_latest, save_checkpoint
from mosaic_it.train.distributed import DistInfo
from mosaic_it.train.fsdp import decoder_layers
from mosaic_it.train.fsdp_checkpoint import META, apply_sharded, read_sharded, rows
from mosaic_it.train.optim import make_optimizer, make_scheduler
from mosaic_it.train.run import run_training

NO_TRACKING = TrackingConfig(enabled=False)

# Runs on every rank: trains one config, records what each rank holds, saves rank 0's gathered
# full state, and dies with SIGKILL at step $KILL_AT. (One training per launch: re-joining a new
# process group in the same processes hung on this machine.)
WORKER = """
import json, os, signal, sys
import mosaic_it.train.fsdp as fsdp
import mosaic_it.train.run as run
from safetensors.torch import save_file
from mosaic_it.config.train import TrainConfig
from mosaic_it.config.tracking import TrackingConfig

out, rank = sys.argv[2], int(os.environ["RANK"])
held = {}

real_full_state = fsdp.full_state
def saving_full_state(model, info, trainable_only):
    state = real_full_state(model, info, trainable_only)
    if state is not None:
        save_file({k: v.clone() for k, v in state.items()}, f"{out}/gathered.safetensors")
    return state
fsdp.full_state = saving_full_state

real_loop = run.train_loop
def recording_loop(**kwargs):
    model = kwargs["model"]
    core = model.get_base_model() if hasattr(model, "get_base_model") else model
    name, param = next((n, p) for n, p in model.named_parameters() if p.requires_grad)
    held.update(name=name, rows=fsdp.local(param).shape[0], global_rows=param.shape[0],
                sharded=fsdp.is_sharded(model), checkpointing=core.is_gradient_checkpointing)
    return real_loop(**kwargs)
run.train_loop = recording_loop

def maybe_die(log):
    if rank == 0:
        print("step", log.step, repr(log.loss), flush=True)
    if log.step == int(os.environ.get("KILL_AT", "0")):
        os.kill(os.getpid(), signal.SIGKILL)

result = run.run_training(TrainConfig.model_validate_json(sys.argv[1]), TrackingConfig(enabled=False),
                          callbacks=[maybe_die])
with open(f"{out}/rank-{rank}.json", "w") as handle:
    json.dump({"losses": result.losses, "held": held}, handle)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(tmp_path: Path, repo_root: Path, cfg: TrainConfig, out: Path, kill_at: int = 0) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of two processes training `cfg`; all of them are gone after."""
    out.mkdir(parents=True, exist_ok=True)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER, encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(worker), cfg.model_dump_json(), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILL_AT": str(kill_at)}
    proc = subprocess.Popen(command, cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=400)
    finally:  # torchrun's workers too, should anything hang
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, stdout, stderr


def ranks(out: Path) -> list[dict]:
    return [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]


def tiny(model_dir, data, out, **changes) -> TrainConfig:
    # No LoRA dropout where losses are compared across world sizes: its masks depend on how many
    # processes draw from the generator, the gradients of a step do not.
    settings = dict(model=str(model_dir), data=str(data), output_dir=str(out), max_length=96, batch_size=2,
                    max_steps=4, learning_rate=1e-2, warmup_ratio=0.0, sample_max_new_tokens=2, device="cpu",
                    lora={"r": 4, "dropout": 0.0})
    return TrainConfig(**{**settings, **changes})


def layout(folder: Path) -> tuple[list[str], dict[str, tuple]]:
    """The files of a model folder, and its weights' names, shapes and dtypes."""
    name = "model.safetensors" if (folder / "model.safetensors").exists() else "adapter_model.safetensors"
    weights = load_file(folder / name)
    return sorted(p.name for p in folder.iterdir()), {k: (v.shape, v.dtype) for k, v in weights.items()}


@pytest.mark.slow
def test_two_fsdp_processes_train_like_one_and_write_the_gathered_model(tmp_path, tiny_llama_dir, data16, repo_root):
    cfg = tiny(tiny_llama_dir, data16, tmp_path / "fsdp", method="full", distributed="fsdp", gradient_checkpointing=True)
    code, _, stderr = torchrun(tmp_path, repo_root, cfg, tmp_path / "record")
    assert code == 0, stderr[-3000:]
    r0, r1 = ranks(tmp_path / "record")
    # Really sharded: each rank holds its torch.chunk half of the rows of every trained tensor.
    assert r0["held"]["sharded"] and r1["held"]["sharded"] and r0["held"]["checkpointing"]
    total = r0["held"]["global_rows"]
    assert (r0["held"]["rows"], r1["held"]["rows"]) == (rows(total, 2, 0)[1] - rows(total, 2, 0)[0],
                                                        rows(total, 2, 1)[1] - rows(total, 2, 1)[0])
    # Both ranks report the same losses: one process's, with each step in two micro-batches.
    assert r0["losses"] == r1["losses"]
    single = run_training(cfg.model_copy(update={"distributed": "ddp", "grad_accum": 2, "gradient_checkpointing": False,
                                                 "output_dir": str(tmp_path / "single")}), NO_TRACKING)
    # Not bit-equal: the ranks' gradient halves are summed in another order than one process's.
    assert r0["losses"] == pytest.approx(single.losses, abs=1e-5)
    assert r0["losses"][-1] < r0["losses"][0]

    # The consolidated model is exactly rank 0's gathered state, in single-process training's layout.
    model_dir = tmp_path / "fsdp" / "baseline" / "model"
    written, gathered = load_file(model_dir / "model.safetensors"), load_file(tmp_path / "record" / "gathered.safetensors")
    assert all(torch.equal(written[k], gathered[k]) for k in written)
    assert set(gathered) - set(written) == {"lm_head.weight"}  # tied to the embeddings, saved once as usual
    assert layout(model_dir) == layout(single.model_dir)
    alone = load_file(single.model_dir / "model.safetensors")
    assert all(torch.allclose(written[k], alone[k], atol=1e-4) for k in written)
    assert json.loads((model_dir / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    samples = json.loads((tmp_path / "fsdp" / "baseline" / "samples.json").read_text())
    assert [s["prompt"] for s in samples] == cfg.sample_prompts  # generated by both ranks together


@pytest.mark.slow
def test_a_killed_fsdp_lora_run_resumes_exactly_from_its_sharded_checkpoint(tmp_path, tiny_llama_dir, data16, repo_root):
    # LoRA dropout draws random numbers every step: the resume also proves each rank's RNG is restored.
    cfg = tiny(tiny_llama_dir, data16, tmp_path / "out", method="lora", distributed="fsdp", max_steps=6,
               save_every=2, learning_rate=5e-3, lora={"r": 4, "dropout": 0.2})
    # Killed after its last step's loss, before it writes anything: its printed losses are those of
    # an uninterrupted run, and its newest checkpoint is step 4.
    code, stdout, _ = torchrun(tmp_path, repo_root, cfg, tmp_path / "first", kill_at=6)
    assert code != 0
    uninterrupted = [float(line.split()[2]) for line in stdout.splitlines() if line.startswith("step ")]
    assert len(uninterrupted) == 6
    root = tmp_path / "out" / "baseline" / "checkpoints"
    assert [p.name for p in list_checkpoints(root)] == ["step-2", "step-4"]
    step4 = root / "step-4"
    assert sorted(p.name for p in step4.iterdir()) == [
        "rng-0.safetensors", "rng-1.safetensors", "shard-0.safetensors", "shard-1.safetensors", META]
    meta = json.loads((step4 / META).read_text())
    assert (meta["step"], meta["world_size"], meta["counters"]["step"]) == (4, 2, 4)
    _reads_into_one_unsharded_process(step4, cfg)

    code, _, stderr = torchrun(tmp_path, repo_root, cfg, tmp_path / "second")
    assert code == 0, stderr[-3000:]
    # Exactly: steps 5 and 6 replayed from the step-4 shards (weights, AdamW moments, RNG) give the
    # same losses; same shards and the same order of every reduction, so no tolerance is needed.
    assert ranks(tmp_path / "second")[0]["losses"] == uninterrupted
    assert not root.exists()
    # The adapter is rank 0's gathered LoRA weights, laid out as one process writes it.
    model_dir = tmp_path / "out" / "baseline" / "model"
    written, gathered = load_file(model_dir / "adapter_model.safetensors"), load_file(tmp_path / "second" / "gathered.safetensors")
    live = {k: re.sub(r"\.(lora_[AB])\.weight$", r".\1.default.weight", k) for k in written}  # peft drops "default"
    assert set(live.values()) == set(gathered) and all(torch.equal(written[k], gathered[live[k]]) for k in written)
    single = run_training(cfg.model_copy(update={"distributed": "ddp", "max_steps": 1, "save_every": 0,
                                                 "output_dir": str(tmp_path / "single")}), NO_TRACKING)
    assert layout(model_dir) == layout(single.model_dir)


def _reads_into_one_unsharded_process(path: Path, cfg: TrainConfig) -> None:
    """A two-rank checkpoint loads into one process: every tensor is rank 0's rows then rank 1's."""
    from mosaic_it.train.model import load_model

    model = load_model(cfg.model_copy(update={"distributed": "ddp"}), torch.device("cpu"))
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, cfg.max_steps)
    ckpt = read_sharded(path, model, DistInfo())
    shards = [load_file(path / f"shard-{r}.safetensors") for r in (0, 1)]
    name, param = next((n, p) for n, p in model.named_parameters() if p.requires_grad)
    for key in (f"model/{name}", f"optim/{name}/exp_avg"):
        assert torch.equal(ckpt.tensors[key], torch.cat([shards[0][key], shards[1][key]]))
    counters = apply_sharded(ckpt, model, optimizer, scheduler)
    assert counters["step"] == 4 and scheduler.last_epoch == 4
    assert torch.equal(param.detach(), ckpt.tensors[f"model/{name}"])
    assert torch.equal(optimizer.state[param]["exp_avg"], ckpt.tensors[f"optim/{name}/exp_avg"])


# In one process (fast): the same format with whole tensors.

def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    cfg = TrainConfig(learning_rate=0.1, warmup_ratio=0.0)
    optimizer = make_optimizer(model, cfg)
    return model, optimizer, make_scheduler(optimizer, cfg, 10)


def _step(model, optimizer, scheduler) -> None:
    model(torch.randn(2, 4)).square().sum().backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


def test_a_sharded_checkpoint_round_trips_every_state_without_pickle(tmp_path):
    model, optimizer, scheduler = _setup()
    _step(model, optimizer, scheduler)
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    path = save_checkpoint(tmp_path, 1, model, optimizer, scheduler, {"step": 1, "losses": [0.1 + 0.2]},
                           DistInfo(), keep=2, sharded=True)
    draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    assert sorted(p.name for p in path.iterdir()) == ["rng-0.safetensors", "shard-0.safetensors", META]
    saved = {n: p.detach().clone() for n, p in model.named_parameters()}
    moments = [optimizer.state[p]["exp_avg"].clone() for p in model.parameters()]

    other, other_opt, other_sched = _setup(seed=1)
    found = load_latest(tmp_path, other, other_opt, other_sched, DistInfo())
    assert found is not None and found[1] == {"step": 1, "losses": [0.1 + 0.2]}  # floats exact through JSON
    assert all(torch.equal(p, saved[n]) for n, p in other.named_parameters())
    assert all(torch.equal(other_opt.state[p]["exp_avg"], m) for p, m in zip(other.parameters(), moments))
    assert other_opt.state_dict()["state"][0]["step"] == 1 and other_sched.last_epoch == 1
    assert other_opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == draws
    # Continuing both gives the same next step.
    torch.manual_seed(7)
    _step(model, optimizer, scheduler)
    torch.manual_seed(7)
    _step(other, other_opt, other_sched)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters()))


@pytest.mark.parametrize("damage", ["truncated shard", "missing rng", "foreign metadata"])
def test_a_damaged_newest_sharded_checkpoint_falls_back_to_the_previous_one(tmp_path, damage):
    model, optimizer, scheduler = _setup()
    _step(model, optimizer, scheduler)
    save_checkpoint(tmp_path, 1, model, optimizer, scheduler, {"step": 1}, DistInfo(), keep=3, sharded=True)
    at_step_1 = {n: p.detach().clone() for n, p in model.named_parameters()}
    _step(model, optimizer, scheduler)
    newest = save_checkpoint(tmp_path, 2, model, optimizer, scheduler, {"step": 2}, DistInfo(), keep=3, sharded=True)
    if damage == "truncated shard":
        data = (newest / "shard-0.safetensors").read_bytes()
        (newest / "shard-0.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "missing rng":
        (newest / "rng-0.safetensors").write_bytes(b"not safetensors")
    else:
        (newest / META).write_text(json.dumps({"format": "torch.distributed.checkpoint"}))

    with pytest.warns(UserWarning, match="step-2 is unreadable"):
        found = load_latest(tmp_path, model, optimizer, scheduler, DistInfo())
    assert found is not None and found[0].name == "step-1" and found[1] == {"step": 1}
    assert all(torch.equal(p, at_step_1[n]) for n, p in model.named_parameters())


@pytest.mark.parametrize(("n", "world"), [(10, 2), (11, 2), (7, 3), (3, 4), (1, 2), (49152, 8)])
def test_rows_are_torch_chunk_boundaries(n, world):
    chunks = torch.arange(n).chunk(world)
    expected = [(int(c[0]), int(c[-1]) + 1) for c in chunks] + [(n, n)] * (world - len(chunks))
    assert [rows(n, world, r) for r in range(world)] == expected


def test_a_model_without_decoder_layer_classes_is_refused_in_one_line():
    with pytest.raises(MosaicItError, match="names no decoder layer class") as err:
        decoder_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    assert "\n" not in str(err.value)


def test_auto_recomputation_counts_the_shards():
    from mosaic_it.plan.estimate import GIB
    from mosaic_it.train.recompute import needs_recompute

    # Llama-3-8B full fine-tuning, 2 x 2,048 tokens, on 80 GB cards: 8 replicas need recomputation
    # (and do not fit even so), 8 shards fit without it.
    cfg = TrainConfig(model="meta-llama/Meta-Llama-3-8B", method="full", batch_size=2, max_length=2048)
    assert needs_recompute(cfg, bf16=True, free_bytes=78 * GIB, world_size=8)
    assert not needs_recompute(cfg.model_copy(update={"distributed": "fsdp"}), bf16=True, free_bytes=78 * GIB,
                               world_size=8)
    assert needs_recompute(cfg.model_copy(update={"distributed": "fsdp"}), bf16=True, free_bytes=78 * GIB)


def test_qlora_is_not_sharded():
    with pytest.raises(ValueError, match="quantization=4bit is not sharded by FSDP"):
        TrainConfig(quantization="4bit", distributed="fsdp")
    assert TrainConfig().distributed == "ddp"

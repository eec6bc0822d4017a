"""`accelerate launch`: its config is honoured where the loop can (processes, bf16, CPU) and refused where not."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.jsonl import write_jsonl
from mosaic_it.train.data import load_records
from mosaic_it.train.launcher import apply_accelerate

ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]
MOSAIC_IT = str(Path(sys.executable).parent / "mosaic-it")


def test_outside_accelerate_nothing_changes():
    cfg = TrainConfig()
    assert apply_accelerate(cfg, {}) is cfg


def test_an_fsdp_config_selects_sharded_training_and_its_activation_checkpointing():
    env = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_RESHARD_AFTER_FORWARD": "true",
           "FSDP_OFFLOAD_PARAMS": "false", "FSDP_ACTIVATION_CHECKPOINTING": "false"}
    got = apply_accelerate(TrainConfig(), env)
    assert (got.distributed, got.gradient_checkpointing) == ("fsdp", "auto")
    got = apply_accelerate(TrainConfig(), {**env, "FSDP_ACTIVATION_CHECKPOINTING": "true"})
    assert (got.distributed, got.gradient_checkpointing) == ("fsdp", True)


@pytest.mark.parametrize(("dtype", "expected"), [("bf16", "bf16"), ("fp32", "fp32"), ("auto", "fp32")])
def test_the_prefect_task_launches_with_the_precision_train_dtype_asks_for(dtype, expected):
    from tasks.train import launch_precision

    cfg = TrainConfig(dtype=dtype)
    flag = launch_precision(cfg, use_cpu=True)  # auto on a CPU host: fp32; on a bf16 GPU it is bf16
    assert apply_accelerate(cfg, {"ACCELERATE_MIXED_PRECISION": flag}).dtype == expected


def test_mixed_precision_and_cpu_decide_dtype_and_device():
    env = {"ACCELERATE_MIXED_PRECISION": "bf16", "ACCELERATE_USE_CPU": "True", "ACCELERATE_DYNAMO_BACKEND": "NO"}
    got = apply_accelerate(TrainConfig(), env)
    assert (got.dtype, got.device) == ("bf16", "cpu")
    assert apply_accelerate(TrainConfig(dtype="auto"), {"ACCELERATE_MIXED_PRECISION": "no"}).dtype == "fp32"
    assert apply_accelerate(TrainConfig(dtype="fp32"), {"ACCELERATE_MIXED_PRECISION": "no"}).dtype == "fp32"


def test_a_dynamo_backend_compiles_the_decoder_layers():
    assert apply_accelerate(TrainConfig(), {"ACCELERATE_DYNAMO_BACKEND": "INDUCTOR"}).compile == "inductor"
    assert apply_accelerate(TrainConfig(compile=True), {"ACCELERATE_DYNAMO_BACKEND": "inductor"}).compile == "inductor"
    assert apply_accelerate(TrainConfig(), {"ACCELERATE_DYNAMO_BACKEND": "AOT_EAGER"}).compile == "aot_eager"
    assert apply_accelerate(TrainConfig(compile=True), {"ACCELERATE_DYNAMO_BACKEND": "NO"}).compile is True


@pytest.mark.parametrize(("env", "cfg", "message"), [
    ({"ACCELERATE_USE_DEEPSPEED": "true"}, {}, "accelerate config: distributed_type: DEEPSPEED is not run"),
    ({"ACCELERATE_USE_FSDP": "true", "FSDP_OFFLOAD_PARAMS": "true"}, {}, "fsdp_offload_params: true is not done"),
    ({"ACCELERATE_USE_FSDP": "true", "FSDP_RESHARD_AFTER_FORWARD": "false"}, {},
     "fsdp_reshard_after_forward: false is not done"),
    ({"ACCELERATE_USE_FSDP": "true", "FSDP_ACTIVATION_CHECKPOINTING": "true"}, {"gradient_checkpointing": False},
     "fsdp_activation_checkpointing: true contradicts train.gradient_checkpointing=false"),
    ({"ACCELERATE_USE_FSDP": "true"}, {"quantization": "4bit"}, "distributed_type: FSDP contradicts train.quantization"),
    ({"ACCELERATE_USE_MEGATRON_LM": "true"}, {}, "accelerate config: distributed_type: MEGATRON_LM is not run"),
    ({"ACCELERATE_MIXED_PRECISION": "fp16"}, {}, "accelerate config: mixed_precision: fp16 needs a loss scaler"),
    ({"ACCELERATE_MIXED_PRECISION": "fp8"}, {}, "accelerate config: mixed_precision: fp8 needs a loss scaler"),
    ({"ACCELERATE_DYNAMO_BACKEND": "CUDAGRAPHS"}, {}, "accelerate config: dynamo_backend: CUDAGRAPHS is not a backend"),
    ({"ACCELERATE_DYNAMO_BACKEND": "INDUCTOR"}, {"compile": "aot_eager"},
     "dynamo_backend: INDUCTOR contradicts train.compile=aot_eager"),
    ({"ACCELERATE_MIXED_PRECISION": "bf16"}, {"dtype": "fp32"}, "mixed_precision: bf16 contradicts train.dtype=fp32"),
    ({"ACCELERATE_MIXED_PRECISION": "no"}, {"dtype": "bf16"}, "mixed_precision: no contradicts train.dtype=bf16"),
    ({"ACCELERATE_USE_CPU": "True"}, {"device": "cuda"}, "use_cpu: true contradicts train.device=cuda"),
])
def test_what_the_loop_cannot_do_is_refused_in_one_line(env, cfg, message):
    with pytest.raises(MosaicItError, match=message) as err:
        apply_accelerate(TrainConfig(**cfg), env)
    assert "\n" not in str(err.value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(tmp_path: Path, repo_root: Path, config: str, overrides: list[str], tiny_llama_dir: Path,
           sample_data: Path) -> subprocess.CompletedProcess:
    data = tmp_path / "train.jsonl"
    write_jsonl(data, load_records(sample_data, max_records=8))
    (tmp_path / "accelerate.yaml").write_text(config, encoding="utf-8")
    settings = [f"train.model={tiny_llama_dir}", "train.method=full", "train.max_steps=2", "train.batch_size=2",
                "train.max_length=64", "train.sample_max_new_tokens=0", "train.save_every=0",
                "train.output_dir=runs/train", "tracking.experiment_name=accelerate", "tracking.log_model=false",
                *overrides]
    command = [*ACCELERATE, "--config_file", str(tmp_path / "accelerate.yaml"), "--main_process_port",
               str(free_port()), MOSAIC_IT, "train", "--params", str(repo_root / "params.yaml"), "--arm", "acc",
               "--data", str(data), *[a for s in settings for a in ("-S", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)


TWO_PROCESSES_BF16 = """compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
num_machines: 1
num_processes: 2
mixed_precision: bf16
"""


@pytest.mark.slow
def test_accelerate_launch_runs_two_processes_under_bf16(tmp_path, repo_root, tiny_llama_dir, sample_data):
    proc = launch(tmp_path, repo_root, TWO_PROCESSES_BF16, [], tiny_llama_dir, sample_data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "acc: 2 steps, final loss" in proc.stdout
    out = tmp_path / "runs" / "train" / "acc"
    assert "dtype: bf16" in (out / "config.yaml").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train/steps"] == 2 and metrics["train/final_loss"] == metrics["train/final_loss"]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["accelerate"], output_format="list")
    assert run.data.params["derived.world_size"] == "2" and run.data.params["train.dtype"] == "bf16"
    # Two processes on one CPU machine are one device to pay for.
    assert run.data.params["derived.devices"] == "1"


FSDP = """compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_machines: 1
num_processes: 2
mixed_precision: 'no'
fsdp_config:
  fsdp_version: 2
  fsdp_activation_checkpointing: true
"""


@pytest.mark.slow
def test_accelerate_launch_with_an_fsdp_config_trains_sharded(tmp_path, repo_root, tiny_llama_dir, sample_data):
    proc = launch(tmp_path, repo_root, FSDP, [], tiny_llama_dir, sample_data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "runs" / "train" / "acc"
    written = (out / "config.yaml").read_text()
    assert "distributed: fsdp" in written and "gradient_checkpointing: true" in written
    assert json.loads((out / "metrics.json").read_text())["train/steps"] == 2
    assert (out / "model" / "model.safetensors").exists()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["accelerate"], output_format="list")
    assert run.data.params["derived.world_size"] == "2" and run.data.params["train.distributed"] == "fsdp"

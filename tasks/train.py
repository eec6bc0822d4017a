"""Prefect task for the train stage (core: mosaic_it.train.run.run_training).

`launcher="inline"` trains in the flow's process. `launcher="accelerate"` runs the same `mosaic-it
train` command under `accelerate launch`, one process per device (a GPU work pool's worker), with
the flow's MLflow run handed over as the parent of the training run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

import mlflow
import yaml
from prefect import task

from mosaic_it.config.tracking import CostConfig, TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.tracking import PARENT_RUN_ENV
from mosaic_it.train.run import TrainResult, run_training
from tasks.common import IO_RETRIES, IO_RETRY_DELAY_S, child_run_id, markdown_table, publish, readable, retry_on_io
from tasks.progress import prefect_progress

Launcher = Literal["inline", "accelerate"]


def launch_precision(cfg: TrainConfig, use_cpu: bool) -> str:
    """accelerate's --mixed_precision for train.dtype (the training reads it back as train.dtype:
    a fixed "no" would train fp32 on a bf16 GPU and refuse an explicit train.dtype=bf16)."""
    if cfg.dtype != "auto":
        return "bf16" if cfg.dtype == "bf16" else "no"
    if use_cpu:
        return "no"
    import torch

    from mosaic_it.train.model import native_bf16

    return "bf16" if native_bf16(torch.device("cuda", 0)) else "no"


def accelerate_command(params_path: Path, num_processes: int, use_cpu: bool, mixed_precision: str = "no") -> list[str]:
    """`accelerate launch ... mosaic-it train --params <file>`, with every launcher default spelled out.

    More than one process goes through accelerate's torchrun launcher (`--multi_gpu`); on a host
    without CUDA the processes join over gloo, which is how this is tested on CPU.
    """
    script = Path(sys.executable).with_name("mosaic-it")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1",
              "--num_processes", str(num_processes), "--mixed_precision", mixed_precision,
              "--dynamo_backend", "no"]
    launch += ["--multi_gpu"] if num_processes > 1 else (["--cpu"] if use_cpu else [])
    return [*launch, str(script), "train", "--params", str(params_path)]


def _launch(cfg: TrainConfig, tracking: TrackingConfig, cost: CostConfig, num_processes: int) -> TrainResult:
    import torch

    env = dict(os.environ)
    parent = mlflow.active_run()
    if parent is not None:
        env[PARENT_RUN_ENV] = parent.info.run_id
    with tempfile.TemporaryDirectory(prefix="mosaic-it-train-") as tmp:
        params = Path(tmp) / "params.yaml"
        sections = {"train": cfg.model_dump(), "tracking": tracking.model_dump(), "cost": cost.model_dump()}
        params.write_text(yaml.safe_dump(sections), encoding="utf-8")
        use_cpu = cfg.device == "cpu" or not torch.cuda.is_available()
        command = accelerate_command(params, num_processes, use_cpu, launch_precision(cfg, use_cpu))
        subprocess.run(command, env=env, check=True)
    out_dir = Path(cfg.output_dir) / cfg.arm
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    run_id = child_run_id(f"train:{cfg.arm}", cfg.arm)
    return TrainResult(cfg.arm, out_dir, out_dir / "model", out_dir / "metrics.json", metrics, run_id=run_id)


@task(
    name="train", task_run_name="train-{cfg.arm}",
    retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, retry_condition_fn=retry_on_io,
)
def train(cfg: TrainConfig, tracking: TrackingConfig, cost: CostConfig,
          launcher: Launcher = "inline", num_processes: int = 1) -> TrainResult:
    if launcher == "accelerate":
        result = _launch(cfg, tracking, cost, num_processes)
    else:
        with prefect_progress():
            result = run_training(cfg, tracking, cost)
    steps, loss = int(result.metrics["train/steps"]), result.metrics["train/final_loss"]
    publish(f"Cost {cfg.arm}", f"{steps} steps, final loss {loss:.4f}; model in `{result.model_dir}`; "
            f"every cost column in `{result.output_dir / 'cost.csv'}`.\n\n{markdown_table(cost_rows(result.metrics))}",
            run_id=result.run_id)
    return result


def with_unit(key: str, value: float) -> str:
    """A cost metric as a person reads it, in the unit its name says."""
    if key.endswith("usd"):
        return f"${value:,.4f}"
    if key.endswith("seconds"):
        return f"{value:,.1f} s"
    if key.endswith("hours"):
        return f"{value:,.4f} h"
    if key.endswith("bytes"):
        return f"{value / 2**20:,.1f} MiB"
    if key.endswith(("fraction", "mfu")):
        return f"{value:.1%}"
    if "flops" in key:
        return f"{value:.3g}"
    return readable(value)


def cost_rows(metrics: dict[str, float]) -> list[dict[str, str]]:
    """Cost, time, throughput and memory as metric/value rows (the wide table stays in cost.csv)."""
    groups = ("cost", "throughput", "memory", "tokens")
    keys = sorted((k for k in metrics if k.split("/")[0] in groups), key=lambda k: (groups.index(k.split("/")[0]), k))
    return [{"metric": k, "value": with_unit(k, metrics[k])} for k in keys]

"""One call that trains an arm end to end: data, model, steps, cost, MLflow, files for DVC.

Outputs under <output_dir>/<arm>/: model/ (adapter or full weights as safetensors, tokenizer),
metrics.json (cost and training metrics for DVC), cost.md and cost.csv, samples.json,
config.yaml, lineage.json (the MLflow run id and the hashes of the data and base model, for
evaluate and compare to record); checkpoints/ exists only while a run is unfinished.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mosaic_it import tracking as track
from mosaic_it.config.tracking import CostConfig, TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.atomic import write_text
from mosaic_it.jsonl import write_json
from mosaic_it.lineage import LINEAGE_FILE, base_model, write_lineage
from mosaic_it.mlmodel.log import log_trained_model
from mosaic_it.models.tokenizer import load_tokenizer
from mosaic_it.paths import refuse_symlink_outside, remove_within
from mosaic_it.progress import progress
from mosaic_it.train import cost as costs
from mosaic_it.train.batching import plan_steps
from mosaic_it.train.data import encode_all, load_records
from mosaic_it.train.distributed import DistInfo, barrier, init_distributed, shutdown_distributed
from mosaic_it.train import fsdp
from mosaic_it.train.generate import sample_generations
from mosaic_it.train.loop import StepLog, train_loop
from mosaic_it.train.compile import compile_layers
from mosaic_it.train.model import autocast_dtype, count_params, load_model, pick_device, save_trained
from mosaic_it.train.launcher import apply_accelerate
from mosaic_it.plan.fit import check_fits
from mosaic_it.train.optim import make_optimizer, make_scheduler
from mosaic_it.train.recompute import resolve_recompute
from mosaic_it.train.outputs import arm_outputs, remember_run, run_to_continue


# metrics.json keys MLflow already has in another form: the last `train/loss` point, and the
# `derived.*` params (steps, samples, parameter counts).
NOT_MLFLOW_METRICS = ("train/final_loss", "train/steps", "train/samples", "params/")

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    arm: str
    output_dir: Path
    model_dir: Path
    metrics_path: Path
    metrics: dict[str, float]
    losses: list[float] = field(default_factory=list)
    run_id: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)  # what lineage.json records


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fingerprint(cfg: TrainConfig, data_md5: str) -> str:
    """Checkpoints resume only the same configuration on the same data."""
    settings = cfg.model_dump(exclude={"save_every", "keep_checkpoints", "resume", "log_every", "compile",
                                       "sample_prompts", "sample_max_new_tokens", "output_dir"})
    return json.dumps({"config": settings, "data": data_md5}, sort_keys=True)


def prepare_checkpoints(root: Path, stamp: str, info: DistInfo) -> None:
    if info.is_main:
        marker = root / "fingerprint.json"
        refuse_symlink_outside(root, root.parent)
        if marker.exists() and marker.read_text(encoding="utf-8") != stamp:
            remove_within(root, root.parent)  # checkpoints of another configuration: never resume those
        root.mkdir(parents=True, exist_ok=True)
        write_text(marker, stamp)
    barrier(info)


def run_training(cfg: TrainConfig, tracking: TrackingConfig, cost: CostConfig | None = None,
                 callbacks: Sequence[Callable[[StepLog], None]] = ()) -> TrainResult:
    clock = costs.StageClock()  # the stage's cost starts here, before any loading
    cfg = apply_accelerate(cfg, os.environ)  # before joining the group: a refusal needs no peers
    info = init_distributed()
    held = contextlib.ExitStack()
    try:
        held.enter_context(arm_outputs(cfg, info))  # inputs outside the arm's folder, one writer at a time
        return _train(cfg, tracking, cost or CostConfig(), info, callbacks, clock)
    finally:
        held.close()
        shutdown_distributed(info)


def _train(cfg: TrainConfig, tracking: TrackingConfig, cost: CostConfig, info: DistInfo,
           callbacks: Sequence[Callable[[StepLog], None]], clock: costs.StageClock) -> TrainResult:
    out_dir = Path(cfg.output_dir) / cfg.arm
    seed_everything(cfg.seed)
    records = load_records(cfg.data, cfg.max_records)  # bad data fails before transformers is imported
    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code)
    examples, enc = encode_all(records, tokenizer, cfg.prompt_format, cfg.max_length)
    data_md5 = track.file_md5(cfg.data)
    base = base_model(cfg.model)

    device = pick_device(cfg, info.local_rank)
    amp = autocast_dtype(cfg, device)
    # From here on the settings are what actually runs (and what config.yaml and MLflow record).
    cfg = cfg.model_copy(update={"gradient_checkpointing": resolve_recompute(cfg, device, amp, info.world_size)})
    check_fits(cfg, device.type, amp is not None, info.world_size, device.index or 0)  # before any load
    shard = cfg.distributed == "fsdp" and info.active
    if cfg.distributed == "fsdp" and not info.active:
        logger.info("train.distributed=fsdp with one process: nothing to shard, training unsharded")
    # Sharding moves each rank's shards to its device, so the whole model never sits on one GPU.
    model = load_model(cfg, torch.device("cpu") if shard else device, amp)
    n_params = count_params(model)
    flops = costs.flop_model(model, n_params, cfg.method == "full", cfg.gradient_checkpointing)
    steps = plan_steps([len(e) for e in examples], cfg.batch_size, cfg.grad_accum, info.world_size, cfg.seed,
                       cfg.group_by_length, cfg.epochs, cfg.max_steps)
    trained = model
    if shard:
        trained = model = fsdp.shard_model(model, device, amp, info)
    elif info.active:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile_backend:  # after sharding, so FSDP's hooks stay outside the compiled graphs
        compile_layers(model, cfg.compile_backend)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(steps))
    ckpt_root = out_dir / "checkpoints"
    prepare_checkpoints(ckpt_root, fingerprint(cfg, data_md5), info)
    costs.reset_peak_memory(device)

    name = costs.device_name(device)
    params = {"train": cfg.model_dump(),
              "cost": {"usd_per_device_hour": cost.usd_per_device_hour, "priced_time": "cost/stage_seconds"},
              "derived": {"steps": len(steps), "samples": len(examples), "world_size": info.world_size,
                          "devices": info.devices(device.type),
                          "device": name, "params_total": n_params["total"],
                          "params_trainable": n_params["trainable"], "data_md5": data_md5,
                          "base_model": base["id"], "base_model_sha256": base["sha256"]}}
    tags = {"mosaic_it.arm": cfg.arm, "mosaic_it.data_md5": data_md5, "mosaic_it.base_model": str(base["id"])}
    run_ctx = (track.stage_run(f"train:{cfg.arm}", tracking, continue_run_id=run_to_continue(ckpt_root), params=params, tags=tags, system_metrics=True)
               if info.is_main else contextlib.nullcontext())
    with run_ctx as run:
        if run is not None:
            remember_run(ckpt_root, run.info.run_id)  # a killed run is continued, not duplicated
            track.log_jsonl_dataset(cfg.data, name=f"{cfg.arm}-train")
        hooks = list(callbacks)
        if info.is_main:
            hooks.append(_progress(len(steps), run is not None, cfg.log_every))
        counters = train_loop(model=trained, examples=examples, steps=steps, cfg=cfg, optimizer=optimizer,
                              scheduler=scheduler, device=device, amp=amp, info=info,
                              pad_id=tokenizer.pad_token_id, flop_model=flops, ckpt_root=ckpt_root,
                              callbacks=hooks, clock=clock)
        peak_bytes = costs.peak_memory_bytes(device)
        metrics = costs.cost_metrics(
            stage_seconds=clock.elapsed(), loop_seconds=counters.wall_seconds, devices=info.devices(device.type),
            usd_per_device_hour=cost.usd_per_device_hour, real_tokens=counters.real_tokens,
            padded_tokens=counters.padded_tokens, flops=counters.flops, flops_executed=counters.flops_executed,
            peak=costs.peak_flops(name, cost.peak_flops) if device.type == "cuda" else None,
            peak_bytes=peak_bytes)
        metrics.update({
            "train/final_loss": counters.losses[-1] if counters.losses else float("nan"),
            "train/mean_loss_last10": float(np.mean(counters.losses[-10:])) if counters.losses else float("nan"),
            "train/steps": float(counters.step), "train/samples": float(len(examples)),
            # Sequences trained (all ranks, every epoch): pad_to_max cost is this times max_length.
            "train/sequences": float(sum(len(micro) for step in steps for micro in step)),
            "tokens/response": float(counters.target_tokens),
            "data/truncated": float(enc.truncated), "data/dropped": float(enc.dropped),
            "params/trainable": float(n_params["trainable"]), "params/total": float(n_params["total"]),
        })
        result = TrainResult(cfg.arm, out_dir, out_dir / "model", out_dir / "metrics.json", metrics,
                             list(counters.losses), run.info.run_id if run is not None else None)
        result.lineage = {"run_id": result.run_id, "arm": cfg.arm, "data": str(cfg.data), "data_md5": data_md5,
                          "base_model": base["id"], "base_model_sha256": base["sha256"]}
        full_state = samples = None
        if shard:  # gathering and a sharded forward are collectives: every rank takes part
            full_state = fsdp.full_state(model, info, trainable_only=cfg.method == "lora")
            samples = sample_generations(model, tokenizer, cfg.sample_prompts, cfg.prompt_format,
                                         cfg.sample_max_new_tokens)
        if info.is_main:
            def bill() -> dict[str, float]:  # the stage clock stops after the last heavy write
                return costs.stage_cost(clock.elapsed(), counters.wall_seconds, info.devices(device.type),
                                        cost.usd_per_device_hour)

            _write_outputs(result, cfg, model, tokenizer, tracking, run is not None, bill,
                           full_state, samples)
        barrier(info)
    if info.is_main:
        remove_within(ckpt_root, out_dir)
    return result


def _progress(total: int, to_mlflow: bool, every: int) -> Callable[[StepLog], None]:
    bar = progress(total, "train", unit="step")

    def on_step(log: StepLog) -> None:
        if bar.done == 0 and log.step > 1:
            bar.update(log.step - 1)  # resumed mid-way
        bar.set_postfix(loss=round(log.loss, 4))
        bar.update(1)
        if to_mlflow and (log.step % every == 0 or log.step == log.total_steps):
            track.log_metrics({"train/loss": log.loss, "train/learning_rate": log.learning_rate,
                               "train/grad_norm": log.grad_norm,
                               "throughput/step_tokens_per_second": log.tokens_per_second}, step=log.step)
        if log.step == log.total_steps:
            bar.close()

    return on_step


def _write_outputs(result: TrainResult, cfg: TrainConfig, model: Any, tokenizer: Any,
                   tracking: TrackingConfig, to_mlflow: bool,
                   bill: Callable[[], dict[str, float]] = dict, full_state: dict[str, torch.Tensor] | None = None,
                   samples: list[dict[str, str]] | None = None) -> None:
    """`full_state` and `samples`: a sharded model's, gathered and generated by every rank."""
    out = result.output_dir
    save_trained(model, tokenizer, result.model_dir, full_state)  # replaces an older model/ only once complete
    if samples is None:
        samples = sample_generations(model, tokenizer, cfg.sample_prompts, cfg.prompt_format,
                                     cfg.sample_max_new_tokens)
    write_json(out / "samples.json", samples)
    logged = None
    if to_mlflow and tracking.log_model:  # before the metrics: MLflow links a run's later metrics to its model
        logged = log_trained_model(result.model_dir, cfg.arm, tracking, cfg.model, cfg.prompt_format,
                                   track.file_md5(cfg.data))
    # Only small files and metric values are written after this: they are not worth a clock.
    result.metrics.update(bill())
    write_json(result.metrics_path, result.metrics)
    cost_rows = {cfg.arm: {k: v for k, v in result.metrics.items() if k.split("/")[0] in ("cost", "tokens", "throughput", "memory")}}
    write_text(out / "cost.md", costs.cost_table(cost_rows, "md"))
    write_text(out / "cost.csv", costs.cost_table(cost_rows, "csv"))
    write_text(out / "config.yaml", yaml.safe_dump(cfg.model_dump(), sort_keys=False))
    write_lineage(out, result.lineage)
    if to_mlflow:
        track.log_metrics({k: v for k, v in result.metrics.items() if not k.startswith(NOT_MLFLOW_METRICS)})
        for name in ("metrics.json", "cost.md", "cost.csv", "samples.json", "config.yaml", LINEAGE_FILE):
            track.log_artifacts(out / name)
    where = f"; MLflow run {result.run_id}" if result.run_id else ""
    if logged is not None:
        where += f", model {logged.model_uri}"
        where += f" registered as {logged.registered_name} v{logged.version}" if logged.version else ""
    logger.info("train %s: wrote %s (model/, metrics.json, cost.md, samples.json)%s", cfg.arm, out, where)

"""The training steps: forward, masked loss, backward with accumulation, clip, step, log, checkpoint."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mosaic_it.config.train import TrainConfig
from mosaic_it.train.batching import Batch, Step, collate
from mosaic_it.train.checkpoint import load_latest, save_checkpoint
from mosaic_it.train.cost import FlopModel, StageClock
from mosaic_it.train.data import IGNORE, Example
from mosaic_it.train.distributed import DistInfo, all_reduce_max, all_reduce_sum
from mosaic_it.train.fsdp import clip_gradients, is_sharded


@dataclass(frozen=True)
class StepLog:
    step: int  # 1-based optimizer step just finished
    total_steps: int
    loss: float  # mean cross-entropy over every response token of the step, all ranks
    learning_rate: float
    grad_norm: float
    tokens_per_second: float  # real tokens of the step, all ranks, over its wall time


@dataclass
class Counters:
    """Totals over the whole run (all ranks), carried across resumes in checkpoints."""
    step: int = 0
    wall_seconds: float = 0.0  # in training steps only
    stage_seconds: float = 0.0  # the whole stage, as of the last checkpoint (StageClock)
    real_tokens: int = 0
    padded_tokens: int = 0
    target_tokens: int = 0
    flops: float = 0.0
    flops_executed: float = 0.0
    losses: list[float] = field(default_factory=list)


def sum_loss(model: Any, batch: Batch, device: torch.device, amp: torch.dtype | None,
             slice_head: bool = True) -> torch.Tensor:
    """Summed cross-entropy over the response tokens of one micro-batch.

    With `slice_head` the output head runs only at positions that have a target: prompt and
    padding positions never need the vocabulary-sized logits (the largest tensor of a step).
    """
    inputs = {k: v.to(device) for k, v in batch.tensors.items()}
    targets = batch.targets.to(device)
    keep = targets != IGNORE
    if slice_head:
        inputs["logits_to_keep"] = keep
    autocast = torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    with autocast:
        logits = model(**inputs, use_cache=False).logits
    logits = logits.reshape(-1, logits.shape[-1])
    wanted = targets[keep] if slice_head else targets.flatten()
    return F.cross_entropy(logits.float(), wanted, ignore_index=IGNORE, reduction="sum")


def supports_head_slicing(model: Any) -> bool:
    """Whether the causal LM's forward takes `logits_to_keep` (current transformers models do)."""
    import inspect

    core = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    core = core.get_base_model() if hasattr(core, "get_base_model") else core
    return "logits_to_keep" in inspect.signature(core.forward).parameters


def resume(ckpt_root: Path, cfg: TrainConfig, model: Any, optimizer: Any, scheduler: Any, info: DistInfo) -> Counters:
    """The counters of the newest readable checkpoint (model, optimizer, RNG restored), or fresh ones."""
    if cfg.resume == "never" or not ckpt_root.exists():
        return Counters()
    found = load_latest(ckpt_root, model, optimizer, scheduler, info)
    return Counters(**found[1]) if found else Counters()


def train_loop(*, model: Any, examples: Sequence[Example], steps: list[Step], cfg: TrainConfig,
               optimizer: torch.optim.Optimizer, scheduler: Any, device: torch.device, amp: torch.dtype | None,
               info: DistInfo, pad_id: int, flop_model: FlopModel, ckpt_root: Path,
               callbacks: Sequence[Callable[[StepLog], None]] = (), clock: StageClock | None = None) -> Counters:
    # Checkpoints hold the unwrapped model's names, so a run may resume on another world size.
    ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    core = model.module if ddp else model
    counters = resume(ckpt_root, cfg, core, optimizer, scheduler, info)
    if clock is not None:
        clock.resume_from(counters.stage_seconds)
    trainable = [p for p in model.parameters() if p.requires_grad]
    slice_head = supports_head_slicing(model)
    sharded = is_sharded(model)
    model.train()
    for index in range(counters.step, len(steps)):
        tick = time.perf_counter()
        mine = steps[index][info.rank::info.world_size]
        batches = [collate([examples[i] for i in micro], cfg.batching, cfg.max_length, pad_id) for micro in mine]
        # Normalise by the whole step's response tokens (every rank, every micro-batch), so that
        # the gradient is the same however the step is split; DDP then averages over ranks.
        step_targets = all_reduce_sum(sum(b.target_tokens for b in batches), info, device)
        scale = info.world_size / max(step_targets, 1.0)
        loss_sum = 0.0
        for k, batch in enumerate(batches):
            last = k == len(batches) - 1
            # FSDP reduce-scatters every micro-batch: keeping unsharded gradients would undo its savings.
            sync = model.no_sync() if ddp and not last else contextlib.nullcontext()
            with sync:
                loss = sum_loss(model, batch, device, amp, slice_head)
                (loss * scale).backward()
            loss_sum += float(loss.detach())
        limit = cfg.max_grad_norm if cfg.max_grad_norm is not None else float("inf")
        grad_norm = (clip_gradients(trainable, limit) if sharded
                     else float(torch.nn.utils.clip_grad_norm_(trainable, limit)))
        learning_rate = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        local = [sum(getattr(b, name) for b in batches)
                 for name in ("real_tokens", "padded_tokens", "sum_sq_real", "sum_sq_padded")]
        real, padded, sq_real, sq_padded = (all_reduce_sum(v, info, device) for v in local)
        step_loss = all_reduce_sum(loss_sum, info, device) / max(step_targets, 1.0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = all_reduce_max(time.perf_counter() - tick, info, device)

        counters.step = index + 1
        counters.wall_seconds += elapsed
        counters.real_tokens += int(real)
        counters.padded_tokens += int(padded)
        counters.target_tokens += int(step_targets)
        counters.flops += flop_model.train_flops(int(real), int(sq_real))
        counters.flops_executed += flop_model.executed_flops(int(padded), int(sq_padded))
        counters.losses.append(step_loss)
        log = StepLog(counters.step, len(steps), step_loss, learning_rate, grad_norm,
                      real / elapsed if elapsed > 0 else 0.0)
        for callback in callbacks:
            callback(log)
        if cfg.save_every and counters.step % cfg.save_every == 0 and counters.step < len(steps):
            if clock is not None:
                counters.stage_seconds = clock.elapsed()
            save_checkpoint(ckpt_root, counters.step, core, optimizer, scheduler,
                            counters.__dict__.copy(), info, cfg.keep_checkpoints, cfg.distributed == "fsdp")
    return counters

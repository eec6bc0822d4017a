"""Whether backward recomputes activations (gradient checkpointing) instead of keeping them.

`train.gradient_checkpointing: auto` keeps activations while they fit and recomputes them when
they do not: on CUDA it compares the memory plan of the run without recomputation (weights,
optimizer state, activations, overhead: mosaic_it.plan) with the memory free on the device
before the model loads. On CPU memory is not the limit that time is, so auto is off there.
"""
from __future__ import annotations

import dataclasses
import warnings

import torch

from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError


def needs_recompute(cfg: TrainConfig, bf16: bool, free_bytes: int, world_size: int = 1) -> bool:
    """Whether the run without gradient checkpointing would need more than `free_bytes` on one GPU
    (of `world_size`: under FSDP each holds its shards only)."""
    from mosaic_it.plan.estimate import estimate
    from mosaic_it.plan.fit import setup_from_config
    from mosaic_it.plan.shape import load_shape

    sharding = "fsdp" if cfg.distributed == "fsdp" and world_size > 1 else "none"
    setup = dataclasses.replace(setup_from_config(cfg, "cuda", bf16, world_size, sharding), gradient_checkpointing=False)
    return estimate(load_shape(cfg.model), setup).peak > free_bytes


def resolve_recompute(cfg: TrainConfig, device: torch.device, amp: torch.dtype | None, world_size: int = 1) -> bool:
    if isinstance(cfg.gradient_checkpointing, bool):
        return cfg.gradient_checkpointing
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    try:
        return needs_recompute(cfg, amp == torch.bfloat16, free, world_size)
    except MosaicItError as exc:  # a model shape the plan cannot read: keep activations, as before
        warnings.warn(f"train.gradient_checkpointing=auto: {exc}; leaving it off", stacklevel=2)
        return False

"""Does a training configuration fit the device, and if not, the cheapest change that would."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.plan.estimate import GIB, MemoryPlan, Setup, estimate
from mosaic_it.plan.shape import ModelShape, load_shape


def setup_from_config(cfg: TrainConfig, device: str, bf16: bool, world_size: int = 1,
                      sharding: str = "none") -> Setup:
    return Setup(method=cfg.method, dtype="bf16" if bf16 else "fp32", quantization=cfg.quantization,
                 batch_size=cfg.batch_size, max_length=cfg.max_length,
                 gradient_checkpointing=cfg.gradient_checkpointing is True,  # auto: resolved by the caller
                 world_size=world_size, sharding=sharding,
                 lora_r=cfg.lora.r, lora_targets=tuple(cfg.lora.target_modules), lora_dropout=cfg.lora.dropout,
                 attention=cfg.attn_implementation, device=device)


def alternatives(setup: Setup, grad_accum: int) -> list[tuple[str, Setup]]:
    """Single changes, cheapest first: the same gradient in smaller pieces, recomputation, sharding
    over the processes already there (FSDP), then changes of method (which change what is learned)."""
    out: list[tuple[str, Setup]] = []
    batch = setup.batch_size
    while batch > 1:
        batch //= 2
        factor = setup.batch_size // batch
        out.append((f"train.batch_size={batch} train.grad_accum={grad_accum * factor}",
                    dataclasses.replace(setup, batch_size=batch)))
    if not setup.gradient_checkpointing:
        out.append(("train.gradient_checkpointing=true", dataclasses.replace(setup, gradient_checkpointing=True)))
    if setup.world_size > 1 and setup.sharding == "none" and setup.quantization == "none":
        out.append(("train.distributed=fsdp", dataclasses.replace(setup, sharding="fsdp")))
    if setup.method == "full":
        out.append(("train.method=lora", dataclasses.replace(setup, method="lora")))
    if setup.device == "cuda" and setup.quantization == "none":
        qlora = "train.quantization=4bit" if setup.method == "lora" else "train.method=lora train.quantization=4bit"
        out.append((f"{qlora} (QLoRA)",
                    dataclasses.replace(setup, method="lora", quantization="4bit")))
    return out


def cheapest_fit(shape: ModelShape, setup: Setup, capacity: int, grad_accum: int = 1) -> str | None:
    """The first change (alone, or with gradient checkpointing and micro-batch 1) that fits."""
    candidates = alternatives(setup, grad_accum)
    lean = dataclasses.replace(setup, batch_size=1, gradient_checkpointing=True)
    candidates += [(f"train.batch_size=1 train.grad_accum={grad_accum * setup.batch_size} "
                    f"train.gradient_checkpointing=true and {name}", dataclasses.replace(alt, batch_size=1,
                                                                                       gradient_checkpointing=True))
                   for name, alt in alternatives(lean, grad_accum * setup.batch_size)
                   if not name.startswith(("train.batch_size", "train.gradient"))]
    for name, alt in candidates:
        if estimate(shape, alt).peak <= capacity:
            return name
    return None


def device_capacity(device: str, index: int = 0) -> int:
    """Bytes a run may use: a GPU's total memory, or the memory Linux reports available."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise MosaicItError("memory plan: no CUDA device on this machine; give the GPU's memory "
                                "with --memory-gib (e.g. 80 for an H100)")
        return int(torch.cuda.get_device_properties(index).total_memory)
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise MosaicItError("memory plan: cannot read available memory (/proc/meminfo); give --memory-gib")


def refusal(shape: ModelShape, setup: Setup, plan: MemoryPlan, capacity: int, grad_accum: int) -> str:
    change = cheapest_fit(shape, setup, capacity, grad_accum)
    advice = f"; cheapest change that fits: {change}" if change else "; no single change fits, use more devices"
    return (f"memory plan: this run needs about {plan.peak / GIB:.1f} GiB per device but "
            f"{capacity / GIB:.1f} GiB is available{advice} (mosaic-it plan shows the breakdown)")


def check_fits(cfg: TrainConfig, device: str, bf16: bool, world_size: int = 1, index: int = 0) -> MemoryPlan | None:
    """Pre-flight for `train`: raise a one-line error when the run will not fit; None when the
    model is not a Llama-style decoder the plan can read (nothing is refused then)."""
    try:
        shape = load_shape(cfg.model)
    except MosaicItError:
        return None
    sharding = "fsdp" if cfg.distributed == "fsdp" and world_size > 1 else "none"
    setup = setup_from_config(cfg, device, bf16, world_size, sharding)
    plan = estimate(shape, setup)
    capacity = device_capacity(device, index)
    if plan.peak > capacity:
        raise MosaicItError(refusal(shape, setup, plan, capacity, cfg.grad_accum))
    return plan

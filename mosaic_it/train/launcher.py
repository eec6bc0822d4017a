"""What `accelerate launch` asked for, read from the environment it hands the training script.

accelerate's launcher starts the processes (torchrun underneath) and describes its config in
ACCELERATE_* variables. The loop honours what it can do itself: the processes and machines
(it joins them with DDP, train/distributed.py), `mixed_precision` bf16 or no (train.dtype) and
`use_cpu` (train.device). It refuses, in one line, what it would otherwise silently ignore:
the FSDP, DeepSpeed and Megatron-LM plugins, fp16/fp8 (no loss scaler here) and torch dynamo.
"""
from __future__ import annotations

from collections.abc import Mapping

from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError

PLUGINS = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DEEPSPEED",
           "ACCELERATE_USE_MEGATRON_LM": "MEGATRON_LM"}


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def refuse(setting: str, why: str) -> MosaicItError:
    return MosaicItError(f"accelerate config: {setting} {why}")


def apply_accelerate(cfg: TrainConfig, env: Mapping[str, str]) -> TrainConfig:
    """cfg with the accelerate config's choices applied; unchanged outside `accelerate launch`."""
    for variable, plugin in PLUGINS.items():
        if _true(env.get(variable)):
            hint = ("use a plain multi-GPU accelerate config and train.distributed=fsdp"
                    if plugin == "FSDP" and "distributed" in TrainConfig.model_fields
                    else "use a plain multi-GPU (DDP) accelerate config")
            raise refuse(f"distributed_type: {plugin}", f"is not run by mosaic-it's training loop (its plugin "
                         f"settings would be ignored); {hint}")
    dynamo = env.get("ACCELERATE_DYNAMO_BACKEND", "NO")
    if dynamo.upper() != "NO":
        raise refuse(f"dynamo_backend: {dynamo}", "(torch.compile) is not applied by mosaic-it's training loop; "
                     "set it to 'no'")
    updates: dict[str, str] = {}
    precision = env.get("ACCELERATE_MIXED_PRECISION")
    if precision is not None:
        precision = precision.lower()
        if precision not in ("no", "bf16"):
            raise refuse(f"mixed_precision: {precision}", "needs a loss scaler mosaic-it's training loop does not "
                         "have; use bf16 or no")
        wanted = "bf16" if precision == "bf16" else "fp32"
        if cfg.dtype not in ("auto", wanted):
            raise refuse(f"mixed_precision: {precision}", f"contradicts train.dtype={cfg.dtype}; make them agree")
        updates["dtype"] = wanted
    if _true(env.get("ACCELERATE_USE_CPU")):
        if cfg.device == "cuda":
            raise refuse("use_cpu: true", "contradicts train.device=cuda; make them agree")
        updates["device"] = "cpu"
    return cfg.model_copy(update=updates) if updates else cfg

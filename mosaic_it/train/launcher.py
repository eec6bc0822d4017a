"""What `accelerate launch` asked for, read from the environment it hands the training script.

accelerate's launcher starts the processes (torchrun underneath) and describes its config in
ACCELERATE_* and FSDP_* variables. The loop honours what it can do itself: the processes and
machines (joined with DDP, train/distributed.py), `distributed_type: FSDP` (train.distributed=fsdp:
mosaic-it's own FSDP2 sharding, train/fsdp.py, with `fsdp_activation_checkpointing` as
train.gradient_checkpointing), `mixed_precision` bf16 or no (train.dtype), `dynamo_backend`
inductor or aot_eager (train.compile, applied per decoder layer) and `use_cpu` (train.device). It
refuses, in one line, what it would otherwise silently ignore: the DeepSpeed and Megatron-LM
plugins, FSDP parameter offload and FSDP without resharding after forward (ZeRO-2), fp16/fp8 (no
loss scaler here) and other dynamo backends. FSDP's wrap policy, version, state-dict type and
cpu_ram_efficient_loading are mosaic-it's own choices (one unit per decoder layer, FSDP2, sharded
checkpoints, every rank loading the model before sharding it).
"""
from __future__ import annotations

from collections.abc import Mapping

from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError

COMPILE_BACKENDS = ("inductor", "aot_eager")
PLUGINS = {"ACCELERATE_USE_DEEPSPEED": "DEEPSPEED", "ACCELERATE_USE_MEGATRON_LM": "MEGATRON_LM"}


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def refuse(setting: str, why: str) -> MosaicItError:
    return MosaicItError(f"accelerate config: {setting} {why}")


def apply_accelerate(cfg: TrainConfig, env: Mapping[str, str]) -> TrainConfig:
    """cfg with the accelerate config's choices applied; unchanged outside `accelerate launch`."""
    for variable, plugin in PLUGINS.items():
        if _true(env.get(variable)):
            raise refuse(f"distributed_type: {plugin}", "is not run by mosaic-it's training loop (its plugin "
                         "settings would be ignored); use a multi-GPU (DDP) or FSDP accelerate config")
    updates: dict[str, str | bool] = _fsdp(cfg, env) if _true(env.get("ACCELERATE_USE_FSDP")) else {}
    dynamo = env.get("ACCELERATE_DYNAMO_BACKEND", "NO").strip()
    if dynamo.upper() != "NO":
        if dynamo.lower() not in COMPILE_BACKENDS:
            raise refuse(f"dynamo_backend: {dynamo}", "is not a backend mosaic-it's per-layer compilation "
                         f"(train.compile) runs; use one of {', '.join(COMPILE_BACKENDS)} or no")
        if cfg.compile_backend not in (None, dynamo.lower()):
            raise refuse(f"dynamo_backend: {dynamo}", f"contradicts train.compile={cfg.compile}; make them agree")
        updates["compile"] = dynamo.lower()
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


def _fsdp(cfg: TrainConfig, env: Mapping[str, str]) -> dict[str, str | bool]:
    """distributed_type: FSDP as train settings; what the loop's FSDP does not do is refused."""
    if _true(env.get("FSDP_OFFLOAD_PARAMS")):
        raise refuse("fsdp_offload_params: true", "is not done by mosaic-it's FSDP; set it to false")
    if env.get("FSDP_RESHARD_AFTER_FORWARD", "true").strip().lower() in ("false", "0", "no"):
        raise refuse("fsdp_reshard_after_forward: false", "is not done by mosaic-it's FSDP (it always frees "
                     "gathered weights after forward); set it to true")
    if cfg.quantization == "4bit":
        raise refuse("distributed_type: FSDP", "contradicts train.quantization=4bit (QLoRA is not sharded); "
                     "use a multi-GPU (DDP) config")
    updates: dict[str, str | bool] = {"distributed": "fsdp"}
    if _true(env.get("FSDP_ACTIVATION_CHECKPOINTING")):
        if cfg.gradient_checkpointing is False:
            raise refuse("fsdp_activation_checkpointing: true", "contradicts train.gradient_checkpointing=false; "
                         "make them agree")
        updates["gradient_checkpointing"] = True
    return updates

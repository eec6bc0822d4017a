"""FSDP2 (`fully_shard`): weights, gradients and optimizer state split across the processes.

Each decoder layer is one FSDP unit (its weights are gathered just before it runs and freed
after), then the root, the transformers model, takes what is left (embeddings, final norm,
output head; tied weights stay in one unit); under LoRA the adapters shard with their layer. Every rank then holds 1/world of every trained tensor, as a DTensor sharded on dim 0.

Mixed precision follows the loop's autocast dtype: under bf16 the gathered weights are cast to
bf16 for compute and gradients are reduced in fp32; the sharded master weights keep the dtype
they were loaded in (mosaic_it.train.precision). Without autocast (CPU, fp32) nothing is cast.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import torch

from mosaic_it.errors import MosaicItError
from mosaic_it.train.distributed import DistInfo

# torch.distributed.fsdp and .tensor cost seconds to import, paid by every training process (and
# every DVC or CLI stage) though almost none shards: they are imported only where sharding happens.
# Until they are imported, no module can be an FSDPModule and no tensor a DTensor.
FSDP_MODULE, DTENSOR_MODULE = "torch.distributed.fsdp", "torch.distributed.tensor"


def _is_instance(value: Any, module: str, name: str) -> bool:
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(value, getattr(loaded, name))


def is_sharded(model: Any) -> bool:
    return any(_is_instance(m, FSDP_MODULE, "FSDPModule") for m in model.modules())


def is_dtensor(tensor: Any) -> bool:
    return _is_instance(tensor, DTENSOR_MODULE, "DTensor")


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a tensor: the shard of a DTensor, the tensor itself otherwise."""
    return tensor.to_local() if is_dtensor(tensor) else tensor


def decoder_layers(model: Any) -> list[torch.nn.Module]:
    """The repeated blocks, found by the class names the model lists as never to be split."""
    core = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = set(getattr(core, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise MosaicItError(f"train.distributed=fsdp: {type(core).__name__} names no decoder layer class "
                            "(_no_split_modules) to shard by; use train.distributed=ddp")
    return layers


def shard_model(model: Any, device: torch.device, amp: torch.dtype | None, info: DistInfo) -> Any:
    """`model` sharded in place over all ranks (one FSDP unit per decoder layer, then the root)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device.type, (info.world_size,))
    policy = MixedPrecisionPolicy(param_dtype=amp, reduce_dtype=torch.float32) if amp else MixedPrecisionPolicy()
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    # The root is the transformers model, not peft's wrapper: peft's generate() calls the inner
    # model directly, which would skip the wrapper's gathering of the root's weights.
    fully_shard(model.get_base_model() if hasattr(model, "get_base_model") else model, mesh=mesh, mp_policy=policy)
    return model


def clip_gradients(params: Iterable[torch.nn.Parameter], limit: float) -> float:
    """clip_grad_norm_ over sharded gradients: the norm of the whole gradient, not of this rank's part."""
    params = list(params)
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.nn.utils.get_total_norm(grads, 2.0)
    if is_dtensor(total):  # a partial (per-shard) norm until reduced over the ranks
        total = total.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(params, limit, total)
    return float(total)


def full_state(model: Any, info: DistInfo, trainable_only: bool) -> dict[str, torch.Tensor] | None:
    """The unsharded state dict on rank 0 (CPU), None elsewhere; every rank must call it.

    Tensors are gathered one at a time, so no rank holds more than one full tensor on the
    device; tied weights are gathered once and stay one tensor under both names, as in an
    unsharded model's state dict.
    """
    out: dict[str, torch.Tensor] = {}
    gathered: dict[int, torch.Tensor] = {}
    for name, value in model.state_dict(keep_vars=True).items():
        if trainable_only and not value.requires_grad:
            continue
        if id(value) not in gathered:
            full = value.full_tensor() if is_dtensor(value) else value
            gathered[id(value)] = full.detach().cpu() if info.is_main else full.new_empty(0)
        out[name] = gathered[id(value)]
    return out if info.is_main else None

"""Sharded checkpoints: every rank writes only its own shards, and any world size can read them.

A checkpoint folder (laid out and renamed into place by mosaic_it.train.checkpoint) holds

    sharded.json             rank 0: step, world size, and per tensor its global shape, dtype and
                             the rows of dim 0 each rank holds; optimizer hyperparameters,
                             scheduler state and the run's counters
    shard-<rank>.safetensors this rank's rows of every trained weight ("model/<name>") and of its
                             optimizer state ("optim/<name>/<key>"; scalars such as AdamW's step
                             are whole in every file)
    rng-<rank>.safetensors   this rank's random generators (tensors, scalars in the header)

No pickle anywhere (torch.distributed.checkpoint's .metadata is one): JSON and safetensors only.
FSDP2 shards dim 0 like torch.chunk, so rank r of W holds rows [r*ceil(N/W), (r+1)*ceil(N/W)).
A reader computes the rows it needs under its own world size and reads just those slices from
whichever files hold them, so a run may resume on another number of processes, or unsharded.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mosaic_it.atomic import atomic_path, write_text
from mosaic_it.train.distributed import DistInfo
from mosaic_it.train.fsdp import local

META = "sharded.json"
FORMAT = "mosaic-it sharded checkpoint 1"


def rows(n: int, world: int, rank: int) -> tuple[int, int]:
    """The rows of dim 0 (start, stop) that rank `rank` of `world` holds under FSDP2's chunking."""
    size = -(-n // world)
    start = min(n, rank * size)
    return start, min(n, start + size)


def _is_split(tensor: torch.Tensor) -> bool:
    """Whether each rank holds only its rows (a dim-0 sharded DTensor), or the whole tensor."""
    placements = getattr(tensor, "placements", None)
    return bool(placements) and placements[0].is_shard(0)


def trained_names(model: Any) -> dict[int, str]:
    return {id(p): n for n, p in model.named_parameters() if p.requires_grad}


def entries(model: Any, optimizer: Any) -> dict[str, torch.Tensor]:
    """Every tensor a checkpoint keeps, by key, as the run holds it (DTensor or plain)."""
    names = trained_names(model)
    out = {f"model/{n}": p.detach() for n, p in model.named_parameters() if p.requires_grad}
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor):
                    out[f"optim/{names[id(param)]}/{key}"] = value
    return out


def _describe(tensor: torch.Tensor, info: DistInfo) -> dict[str, Any]:
    shape = list(tensor.shape)
    split = _is_split(tensor) or (tensor.ndim > 0 and not info.active)
    spans = [list(rows(shape[0], info.world_size, r)) for r in range(info.world_size)] if split else None
    if split:
        expected = spans[info.rank][1] - spans[info.rank][0]
        if local(tensor).shape[0] != expected:
            raise RuntimeError(f"rank {info.rank} holds {local(tensor).shape[0]} rows of a {shape} tensor, not "
                               f"{expected}: FSDP2 no longer shards dim 0 like torch.chunk")
    return {"shape": shape, "dtype": str(tensor.dtype).removeprefix("torch."), "rows": spans}


def _groups(optimizer: Any, names: dict[int, str]) -> list[dict[str, Any]]:
    return [{**{k: v for k, v in group.items() if k != "params"},
             "param_names": [names[id(p)] for p in group["params"]]} for group in optimizer.param_groups]


def write_sharded(folder: Path, model: Any, optimizer: Any, scheduler: Any, counters: dict[str, Any],
                  info: DistInfo) -> None:
    """This rank's files of the checkpoint in `folder` (rank 0 also writes the metadata)."""
    from mosaic_it.train.checkpoint import rng_state

    tensors = entries(model, optimizer)
    described = {key: _describe(t, info) for key, t in tensors.items()}  # every rank checks its rows first
    mine = {key: local(t).detach().cpu().clone().contiguous() for key, t in tensors.items()}
    with atomic_path(folder / f"shard-{info.rank}.safetensors", fsync=True) as tmp:
        save_file(mine, str(tmp))
    state = rng_state()
    rng = {"python": state["python"][1], "numpy": state["numpy"][1], "torch": state["torch"]}
    rng.update({f"cuda/{i}": t for i, t in enumerate(state.get("cuda", []))})
    header = {"python": json.dumps([state["python"][0], state["python"][2]]),
              "numpy": json.dumps(state["numpy"][0:1] + state["numpy"][2:])}
    with atomic_path(folder / f"rng-{info.rank}.safetensors", fsync=True) as tmp:
        save_file(rng, str(tmp), metadata=header)
    if info.is_main:
        meta = {"format": FORMAT, "step": counters["step"], "world_size": info.world_size, "tensors": described,
                "param_groups": _groups(optimizer, trained_names(model)), "scheduler": scheduler.state_dict(),
                "counters": counters}
        write_text(folder / META, json.dumps(meta, allow_nan=True), fsync=True)


@dataclass
class ShardedCheckpoint:
    """What this rank needs from a sharded checkpoint, read fully before anything is changed."""
    path: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]  # this rank's rows (or whole tensors) by key
    rng: dict[str, Any] | None


def is_sharded_checkpoint(path: Path) -> bool:
    return (path / META).is_file()


def _target_rows(param: torch.Tensor, info: DistInfo) -> tuple[int, int]:
    n = param.shape[0]
    return rows(n, info.world_size, info.rank) if _is_split(param) else (0, n)


def _read_rows(files: dict[int, Any], key: str, entry: dict[str, Any], start: int, stop: int) -> torch.Tensor:
    parts = []
    for source, (first, last) in enumerate(entry["rows"]):
        lo, hi = max(first, start), min(last, stop)
        if lo < hi:
            parts.append(files[source].get_slice(key)[lo - first:hi - first])
    shape = (stop - start, *entry["shape"][1:])
    value = torch.cat(parts) if parts else torch.empty(shape, dtype=getattr(torch, entry["dtype"]))
    if tuple(value.shape) != shape:
        raise ValueError(f"{key}: rows {start}:{stop} read as shape {tuple(value.shape)}, expected {shape}")
    return value


def read_sharded(path: Path, model: Any, info: DistInfo) -> ShardedCheckpoint:
    """Raises on anything unreadable, foreign or inconsistent with the model."""
    meta = json.loads((path / META).read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path / META}: not a {FORMAT}")
    described: dict[str, dict[str, Any]] = meta["tensors"]
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    wanted = {f"model/{n}" for n in params}
    unknown = sorted(k for k in described if k.startswith("model/") and k not in wanted)
    missing = sorted(wanted - set(described))
    if unknown or missing:
        raise ValueError(f"{path / META}: weights the model does not have or lacks, e.g. {(unknown or missing)[0]}")
    tensors: dict[str, torch.Tensor] = {}
    with contextlib.ExitStack() as stack:
        files = {r: stack.enter_context(safe_open(path / f"shard-{r}.safetensors", framework="pt"))
                 for r in range(int(meta["world_size"]))}
        for key, entry in described.items():
            param = params[key.split("/", 2)[1]]
            if entry["rows"] is None:
                tensors[key] = files[min(info.rank, len(files) - 1)].get_tensor(key)
            elif list(entry["shape"]) != list(param.shape):
                raise ValueError(f"{path / META}: {key} has shape {entry['shape']}, the model {list(param.shape)}")
            else:
                tensors[key] = _read_rows(files, key, entry, *_target_rows(param, info))
    rng_file = path / f"rng-{info.rank}.safetensors"
    return ShardedCheckpoint(path, meta, tensors, _read_rng(rng_file) if rng_file.exists() else None)


def _read_rng(path: Path) -> dict[str, Any]:
    with safe_open(path, framework="pt") as handle:
        header = handle.metadata()
        saved = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safe_open has no iterator
    version, gauss = json.loads(header["python"])
    kind, pos, has_gauss, cached = json.loads(header["numpy"])
    state: dict[str, Any] = {"python": [version, saved["python"], gauss],
                             "numpy": [kind, saved["numpy"], pos, has_gauss, cached], "torch": saved["torch"]}
    cuda = sorted((k for k in saved if k.startswith("cuda/")), key=lambda k: int(k.split("/")[1]))
    if cuda:
        state["cuda"] = [saved[k] for k in cuda]
    return state


def _like(param: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """`value` (this rank's rows) as a tensor placed like `param`."""
    whole = torch.zeros_like(param)
    local(whole).copy_(value)
    return whole


def apply_sharded(ckpt: ShardedCheckpoint, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load weights, optimizer and scheduler state and RNG into the run; returns its counters."""
    from mosaic_it.train.checkpoint import set_rng_state

    names = trained_names(model)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad():
        for name, param in params.items():
            local(param).copy_(ckpt.tensors[f"model/{name}"])
    saved_groups = ckpt.meta["param_groups"]
    current = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    groups = []
    for index, (group, saved) in enumerate(zip(optimizer.param_groups, saved_groups, strict=True)):
        if [names[id(p)] for p in group["params"]] != saved["param_names"]:
            raise ValueError(f"{ckpt.path / META}: optimizer group {index} holds other parameters")
        hyper = {k: tuple(v) if k == "betas" else v for k, v in saved.items() if k != "param_names"}
        groups.append({**hyper, "params": current["param_groups"][index]["params"]})
        for param, number in zip(group["params"], current["param_groups"][index]["params"], strict=True):
            prefix = f"optim/{names[id(param)]}/"
            found = {k[len(prefix):]: v for k, v in ckpt.tensors.items() if k.startswith(prefix)}
            if found:
                state[number] = {k: _like(param, v) if ckpt.meta["tensors"][prefix + k]["rows"] else v
                                 for k, v in found.items()}
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    scheduler.load_state_dict(ckpt.meta["scheduler"])
    if ckpt.rng is not None:
        set_rng_state(ckpt.rng)
    return ckpt.meta["counters"]

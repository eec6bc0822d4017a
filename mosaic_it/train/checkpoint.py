"""Checkpoints that let a killed run continue exactly where it stopped.

A checkpoint holds the trainable weights (safetensors), the optimizer and scheduler state and
the counters of the run so far (state.pt), and every random generator's state (rng-<rank>.pt).
The data position needs nothing extra: the step plan is a pure function of the seed, so
resuming at step k replays batches from step k on. Under FSDP every rank writes its own shards
instead (mosaic_it.train.fsdp_checkpoint); the folder protocol below is the same.

Checkpoint folders may sit on shared disks, so they are untrusted: the .pt files hold only
tensors and plain containers and are read with torch.load(weights_only=True), which refuses
anything else instead of unpickling it. Every file is fsynced before the folder is renamed into
place. A checkpoint that cannot be read is skipped with a warning and the previous one is used.
"""
from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mosaic_it.atomic import fsync_dir
from mosaic_it.paths import remove_within
from mosaic_it.train.distributed import DistInfo, all_reduce_sum, barrier

PREFIX = "step-"
WEIGHTS = "trainable.safetensors"
STATE = "state.pt"


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain values (loadable with weights_only=True)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(x) for x in internal.tolist()), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(root: Path) -> list[Path]:
    found = [p for p in root.glob(f"{PREFIX}*")
             if p.is_dir() and not p.is_symlink() and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def _save(obj: Any, path: Path) -> None:
    with path.open("wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())


def save_checkpoint(root: Path, step: int, model: Any, optimizer: Any, scheduler: Any,
                    counters: dict[str, Any], info: DistInfo, keep: int, sharded: bool = False) -> Path:
    """`sharded`: every rank writes its own shards (train.distributed=fsdp, fsdp_checkpoint.py)."""
    final = root / f"{PREFIX}{step}"
    staging = root / f".{PREFIX}{step}.partial"
    if info.is_main:
        remove_within(staging, root)  # a leftover of a killed save
        staging.mkdir(parents=True)
    barrier(info)
    if sharded:
        from mosaic_it.train.fsdp_checkpoint import write_sharded

        write_sharded(staging, model, optimizer, scheduler, counters, info)
    else:
        _save(rng_state(), staging / f"rng-{info.rank}.pt")
    if info.is_main and not sharded:
        save_file(trainable_state(model), staging / WEIGHTS)
        _save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "counters": counters}, staging / STATE)
        _fsync_file(staging / WEIGHTS)
    barrier(info)
    if info.is_main:
        fsync_dir(staging)
        remove_within(final, root)
        staging.rename(final)  # atomic: a kill leaves either the old checkpoints or the new one
        fsync_dir(root)
        for old in list_checkpoints(root)[:-keep]:
            remove_within(old, root)
    barrier(info)
    return final


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


@dataclass
class Checkpoint:
    """A checkpoint read fully into memory, before anything in the run is changed by it."""
    path: Path
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]
    rng: dict[str, Any] | None


def read_checkpoint(path: Path, rank: int) -> Checkpoint:
    """Raises on any unreadable or unexpected content (including a pickle of anything but data)."""
    weights = load_file(path / WEIGHTS)
    state = torch.load(path / STATE, weights_only=True, map_location="cpu")
    if not isinstance(state, dict) or not {"optimizer", "scheduler", "counters"} <= set(state):
        raise ValueError(f"{path / STATE}: not a mosaic-it training state")
    rng_file = path / f"rng-{rank}.pt"
    rng = torch.load(rng_file, weights_only=True, map_location="cpu") if rng_file.exists() else None
    return Checkpoint(path, weights, state, rng)


def apply_checkpoint(ckpt: Checkpoint, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    params = dict(model.named_parameters())
    unknown = sorted(set(ckpt.weights) - set(params))
    if unknown:
        raise ValueError(f"{ckpt.path / WEIGHTS}: weights the model does not have, e.g. {unknown[0]}")
    with torch.no_grad():
        for name, value in ckpt.weights.items():
            params[name].copy_(value.to(params[name].device))
    optimizer.load_state_dict(ckpt.state["optimizer"])
    scheduler.load_state_dict(ckpt.state["scheduler"])
    if ckpt.rng is not None:
        set_rng_state(ckpt.rng)
    return ckpt.state["counters"]


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, info: DistInfo) -> dict[str, Any]:
    return apply_checkpoint(read_checkpoint(path, info.rank), model, optimizer, scheduler)


def load_latest(root: Path, model: Any, optimizer: Any, scheduler: Any,
                info: DistInfo) -> tuple[Path, dict[str, Any]] | None:
    """Resume from the newest readable checkpoint; None when there is none (start from step 0).

    Every rank must find it readable (each reads its own files), else all take the previous one.
    """
    from mosaic_it.train.fsdp_checkpoint import apply_sharded, is_sharded_checkpoint, read_sharded

    device = next(model.parameters()).device
    for path in reversed(list_checkpoints(root)):
        reason, sharded = "", is_sharded_checkpoint(path)
        try:
            ckpt = read_sharded(path, model, info) if sharded else read_checkpoint(path, info.rank)
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is skipped the same way
            reason = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__) or "unreadable"
        if all_reduce_sum(1.0 if reason else 0.0, info, device) > 0:
            why = reason[:200] if reason else "another rank could not read its part"
            warnings.warn(f"checkpoint {path} is unreadable ({why}); trying the previous one", stacklevel=2)
            continue
        if sharded:
            return path, apply_sharded(ckpt, model, optimizer, scheduler)
        return path, apply_checkpoint(ckpt, model, optimizer, scheduler)
    return None

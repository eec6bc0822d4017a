"""Checkpoints that let a killed run continue exactly where it stopped.

A checkpoint holds the trainable weights (safetensors), the optimizer and scheduler state,
every random generator's state (one file per rank), and the counters of the run so far.
The data position needs nothing extra: the step plan is a pure function of the seed, so
resuming at step k replays batches from step k on.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mosaic_it.train.distributed import DistInfo, barrier

PREFIX = "step-"


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(root: Path) -> list[Path]:
    found = [p for p in root.glob(f"{PREFIX}*") if p.is_dir() and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def save_checkpoint(root: Path, step: int, model: Any, optimizer: Any, scheduler: Any,
                    counters: dict[str, Any], info: DistInfo, keep: int) -> Path:
    final = root / f"{PREFIX}{step}"
    staging = root / f".{PREFIX}{step}.partial"
    if info.is_main:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    barrier(info)
    torch.save(rng_state(), staging / f"rng-{info.rank}.pt")
    if info.is_main:
        save_file(trainable_state(model), staging / "trainable.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "counters": counters}, staging / "state.pt")
    barrier(info)
    if info.is_main:
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)  # atomic: a kill leaves either the old checkpoints or the new one
        for old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    barrier(info)
    return final


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, info: DistInfo) -> dict[str, Any]:
    weights = load_file(path / "trainable.safetensors")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name].device))
    state = torch.load(path / "state.pt", weights_only=False, map_location="cpu")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng_file = path / f"rng-{info.rank}.pt"
    if rng_file.exists():
        set_rng_state(torch.load(rng_file, weights_only=False))
    return state["counters"]

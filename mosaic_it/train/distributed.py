"""Running under torchrun / accelerate launch: one process per device, gradients averaged (DDP)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def devices(self, device_type: str) -> int:
        """Devices paid for: one per GPU process, one per machine when processes share CPUs."""
        return self.world_size if device_type == "cuda" else max(1, self.world_size // self.local_world_size)


def init_distributed() -> DistInfo:
    """Join the process group the launcher describes in the environment (if it describes one)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")),
                    int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def shutdown_distributed(info: DistInfo) -> None:
    if info.active and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(value: float, info: DistInfo, device: torch.device) -> float:
    if not info.active:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def all_reduce_max(value: float, info: DistInfo, device: torch.device) -> float:
    if not info.active:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()

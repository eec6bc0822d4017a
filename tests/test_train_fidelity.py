"""Training fidelity: native bf16 only, executed FLOPs of packed rows, automatic gradient checkpointing."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.train.model import autocast_dtype

GPU = torch.device("cuda", 0)


@pytest.fixture
def gpu_of_capability(monkeypatch):
    """Pretend device 0 is a GPU of the given compute capability (torch's own query, patched)."""
    def install(major: int, minor: int, name: str) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_properties",
                            lambda device=None: SimpleNamespace(major=major, minor=minor, name=name))
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        # What the old check relied on: true on V100/T4 too, through emulation.
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return install


@pytest.mark.parametrize(("major", "minor", "name", "expected"), [
    (7, 0, "Tesla V100-SXM2-16GB", None),
    (7, 5, "Tesla T4", None),
    (8, 0, "NVIDIA A100-SXM4-40GB", torch.bfloat16),
    (8, 9, "NVIDIA L4", torch.bfloat16),
    (9, 0, "NVIDIA H100 80GB HBM3", torch.bfloat16),
])
def test_auto_uses_bf16_only_from_compute_capability_8(gpu_of_capability, major, minor, name, expected):
    gpu_of_capability(major, minor, name)
    assert autocast_dtype(TrainConfig(dtype="auto"), GPU) is expected
    assert autocast_dtype(TrainConfig(dtype="fp32"), GPU) is None


def test_explicit_bf16_on_an_emulating_gpu_is_a_one_line_error(gpu_of_capability):
    gpu_of_capability(7, 0, "Tesla V100-SXM2-16GB")
    with pytest.raises(MosaicItError, match=r"train.dtype=bf16: Tesla V100-SXM2-16GB has no native bf16") as err:
        autocast_dtype(TrainConfig(dtype="bf16"), GPU)
    assert "\n" not in str(err.value)
    gpu_of_capability(8, 0, "NVIDIA A100-SXM4-40GB")
    assert autocast_dtype(TrainConfig(dtype="bf16"), GPU) is torch.bfloat16


def test_cpu_trains_fp32_unless_bf16_is_asked_for():
    cpu = torch.device("cpu")
    assert autocast_dtype(TrainConfig(dtype="auto"), cpu) is None
    assert autocast_dtype(TrainConfig(dtype="bf16"), cpu) is torch.bfloat16

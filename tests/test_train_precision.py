"""Which dtype every weight gets: bf16 frozen base for LoRA, fp32 adapters and fp32 full fine-tuning."""
from __future__ import annotations

import pydantic
import pytest
import torch

from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.train.model import load_model
from mosaic_it.train.optim import fused_update, make_optimizer
from mosaic_it.train.precision import base_weight_dtype

CPU = torch.device("cpu")


def test_the_base_is_bf16_only_for_lora_under_bf16():
    assert base_weight_dtype("lora", torch.bfloat16) is torch.bfloat16
    assert base_weight_dtype("full", torch.bfloat16) is torch.float32  # fp32 master weights
    assert base_weight_dtype("lora", None) is torch.float32
    assert base_weight_dtype("full", None) is torch.float32


def test_lora_under_bf16_freezes_a_bf16_base_and_trains_fp32_adapters(tiny_llama_dir):
    # The GPU decision exercised on CPU: amp=bf16 is what autocast_dtype returns on a bf16 GPU.
    model = load_model(TrainConfig(model=str(tiny_llama_dir), method="lora"), CPU, torch.bfloat16)
    frozen = {n: p.dtype for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    assert set(trained.values()) == {torch.float32}
    assert set(frozen.values()) == {torch.bfloat16}
    optimizer = make_optimizer(model, TrainConfig(model=str(tiny_llama_dir)))
    loss = model(input_ids=torch.tensor([[1, 2, 3, 4]]), labels=torch.tensor([[1, 2, 3, 4]])).loss
    loss.backward()
    optimizer.step()
    states = [t for s in optimizer.state.values() for t in s.values() if t.dim() > 0]
    assert states and {t.dtype for t in states} == {torch.float32}


def test_full_fine_tuning_keeps_fp32_master_weights_under_bf16(tiny_llama_dir):
    model = load_model(TrainConfig(model=str(tiny_llama_dir), method="full"), CPU, torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_cpu_runs_stay_fp32(tiny_llama_dir):
    model = load_model(TrainConfig(model=str(tiny_llama_dir), method="lora"), CPU)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_qlora_is_refused_on_cpu_in_one_line(tiny_llama_dir):
    cfg = TrainConfig(model=str(tiny_llama_dir), method="lora", quantization="4bit")
    with pytest.raises(MosaicItError, match="quantization=4bit needs a CUDA device") as err:
        load_model(cfg, CPU)
    assert "\n" not in str(err.value)


def test_qlora_trains_adapters_only():
    with pytest.raises(pydantic.ValidationError, match="quantization=4bit trains LoRA adapters only"):
        TrainConfig(method="full", quantization="4bit")


def test_adamw_is_fused_only_for_plain_cuda_parameters(tiny_llama_dir):
    # CPU keeps the default update (the exact losses elsewhere are pinned to it).
    model = load_model(TrainConfig(model=str(tiny_llama_dir), method="full"), CPU)
    assert not fused_update([p for p in model.parameters()])
    assert not fused_update([])
    optimizer = make_optimizer(model, TrainConfig(model=str(tiny_llama_dir), method="full"))
    assert not optimizer.defaults.get("fused")

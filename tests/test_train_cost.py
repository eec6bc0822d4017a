"""The FLOP model, device peaks, and the cost metrics derived from a run's counters."""
from __future__ import annotations

import pytest

from mosaic_it.config.tracking import DEFAULT_PEAK_FLOPS
from mosaic_it.train.cost import FlopModel, cost_metrics, cost_table, peak_flops


def test_full_finetuning_costs_six_flops_per_parameter_and_token_plus_attention():
    full = FlopModel(matmul_params=1000, trainable_params=1000, layers=2, attn_width=8, full_finetune=True, recompute=False)
    # 6 * N * tokens + 3 * (2 * layers * width * sum of squared lengths)
    assert full.train_flops(tokens=10, sum_sq_len=100) == 6 * 1000 * 10 + 3 * 2 * 2 * 8 * 100


def test_lora_skips_weight_gradients_of_frozen_layers():
    lora = FlopModel(matmul_params=1000, trainable_params=10, layers=0, attn_width=0, full_finetune=False, recompute=False)
    assert lora.train_flops(tokens=1, sum_sq_len=0) == 2 * 1000 + 2 * 1000 + 2 * 10


def test_gradient_checkpointing_costs_one_more_forward_only_when_executed():
    ckpt = FlopModel(1000, 1000, 0, 0, True, recompute=True)
    assert ckpt.train_flops(1, 0) == 6000 and ckpt.train_flops(1, 0, executed=True) == 8000


def test_device_peaks_prefer_the_most_specific_name():
    assert peak_flops("NVIDIA H100 80GB HBM3", DEFAULT_PEAK_FLOPS) == 989e12
    assert peak_flops("NVIDIA H100 PCIe", DEFAULT_PEAK_FLOPS) == 756e12
    assert peak_flops("NVIDIA A100-SXM4-40GB", DEFAULT_PEAK_FLOPS) == 312e12
    assert peak_flops("NVIDIA L40S", DEFAULT_PEAK_FLOPS) == 362e12
    assert peak_flops("cpu", DEFAULT_PEAK_FLOPS) is None


def test_cost_metrics_price_device_hours_and_count_padding():
    m = cost_metrics(wall_seconds=1800, devices=2, usd_per_device_hour=3.0, real_tokens=750, padded_tokens=1000,
                     flops=1e15, flops_executed=2e15, peak=1e12, peak_bytes=123)
    assert m["cost/device_hours"] == 1.0 and m["cost/usd"] == 3.0
    assert m["tokens/padding"] == 250 and m["tokens/padding_fraction"] == 0.25
    assert m["throughput/tokens_per_second"] == pytest.approx(750 / 1800)
    assert m["cost/mfu"] == pytest.approx(1e15 / (1800 * 2 * 1e12))
    unknown = cost_metrics(wall_seconds=1, devices=1, usd_per_device_hour=1, real_tokens=1, padded_tokens=1,
                           flops=1, flops_executed=1, peak=None, peak_bytes=1)
    assert "cost/mfu" not in unknown  # an unknown device's MFU is not guessed


def test_cost_table_renders_markdown_and_csv():
    rows = {"baseline": {"cost/usd": 0.5, "tokens/real": 10.0}, "mosaic": {"cost/usd": 0.25}}
    md = cost_table(rows, "md").splitlines()
    assert md[0] == "| run | cost/usd | tokens/real |" and md[3] == "| mosaic | 0.25 |  |"
    assert cost_table(rows, "csv").splitlines() == ["run,cost/usd,tokens/real", "baseline,0.5,10.0", "mosaic,0.25,"]

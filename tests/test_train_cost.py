"""The FLOP model, device peaks, and the cost metrics derived from a run's counters."""
from __future__ import annotations

import pytest

from mosaic_it.config.tracking import DEFAULT_PEAK_FLOPS
from mosaic_it.train.batching import collate
from mosaic_it.train.cost import TIME_NOTE, FlopModel, StageClock, cost_metrics, cost_table, peak_flops
from mosaic_it.train.data import Example


def test_full_finetuning_costs_six_flops_per_parameter_and_token_plus_attention():
    full = FlopModel(matmul_params=1000, trainable_params=1000, layers=2, attn_width=8, full_finetune=True, recompute=False)
    # 6 * N * tokens + 3 * (2 * layers * width * sum of squared lengths)
    assert full.train_flops(tokens=10, sum_sq_len=100) == 6 * 1000 * 10 + 3 * 2 * 2 * 8 * 100


def test_lora_skips_weight_gradients_of_frozen_layers():
    lora = FlopModel(matmul_params=1000, trainable_params=10, layers=0, attn_width=0, full_finetune=False, recompute=False)
    assert lora.train_flops(tokens=1, sum_sq_len=0) == 2 * 1000 + 2 * 1000 + 2 * 10


def test_gradient_checkpointing_costs_one_more_forward_only_when_executed():
    ckpt = FlopModel(1000, 1000, 0, 0, True, recompute=True)
    assert ckpt.train_flops(1, 0) == 6000 and ckpt.executed_flops(1, 0) == 8000


def test_executed_flops_of_a_packed_batch_follow_the_attention_span_computed(embedded_tokenizer):
    lengths = [5, 7, 12]
    examples = [Example(list(range(1, n + 1)), list(range(1, n + 1))) for n in lengths]
    packed = collate(examples, "packed", 64, embedded_tokenizer.pad_token_id)
    model = FlopModel(matmul_params=1000, trainable_params=1000, layers=2, attn_width=8, full_finetune=True,
                      recompute=False)
    # By hand: 6 N per position (full fine-tuning), attention forward 2 * layers * width per unit of
    # span, three times for forward + backward. 24 positions in one row.
    per_sample_span = 5 * 5 + 7 * 7 + 12 * 12  # 218: a varlen kernel attends within each sample
    dense_span = 24 * 24  # 576: a dense block-diagonal mask makes the kernel cover the whole row
    assert model.executed_flops(24, per_sample_span) == 6 * 1000 * 24 + 3 * 2 * 2 * 8 * 218 == 164_928
    assert model.executed_flops(24, dense_span) == 6 * 1000 * 24 + 3 * 2 * 2 * 8 * 576 == 199_296
    # The batch reports the span its attention path computes, and the useful count does not move.
    assert packed.padded_tokens == 24 and packed.sum_sq_padded in (per_sample_span, dense_span)
    assert model.executed_flops(packed.padded_tokens, packed.sum_sq_padded) == \
        6 * 1000 * 24 + 3 * 2 * 2 * 8 * packed.sum_sq_padded
    assert model.train_flops(packed.real_tokens, packed.sum_sq_real) == 6 * 1000 * 24 + 3 * 2 * 2 * 8 * 218
    # Padded rows: every row computes width^2.
    padded = collate(examples, "pad_to_max", 16, embedded_tokenizer.pad_token_id)
    assert padded.sum_sq_padded == 3 * 16 * 16
    assert model.executed_flops(padded.padded_tokens, padded.sum_sq_padded) == 6 * 1000 * 48 + 3 * 2 * 2 * 8 * 768


def test_device_peaks_prefer_the_most_specific_name():
    assert peak_flops("NVIDIA H100 80GB HBM3", DEFAULT_PEAK_FLOPS) == 989e12
    assert peak_flops("NVIDIA H100 PCIe", DEFAULT_PEAK_FLOPS) == 756e12
    assert peak_flops("NVIDIA A100-SXM4-40GB", DEFAULT_PEAK_FLOPS) == 312e12
    assert peak_flops("NVIDIA L40S", DEFAULT_PEAK_FLOPS) == 362e12
    assert peak_flops("cpu", DEFAULT_PEAK_FLOPS) is None


def test_cost_metrics_price_the_whole_stage_and_measure_speed_on_the_loop():
    m = cost_metrics(stage_seconds=1800, loop_seconds=1200, devices=2, usd_per_device_hour=3.0, real_tokens=750,
                     padded_tokens=1000, flops=1e15, flops_executed=2e15, peak=1e12, peak_bytes=123)
    assert m["cost/stage_seconds"] == m["cost/wall_seconds"] == 1800 and m["cost/loop_seconds"] == 1200
    assert m["cost/device_hours"] == 1.0 and m["cost/usd"] == 3.0  # 1800 s x 2 devices at $3/h
    assert m["cost/loop_usd"] == pytest.approx(2.0)
    assert m["tokens/padding"] == 250 and m["tokens/padding_fraction"] == 0.25
    assert m["throughput/tokens_per_second"] == pytest.approx(750 / 1200)
    assert m["cost/mfu"] == pytest.approx(1e15 / (1200 * 2 * 1e12))
    unknown = cost_metrics(stage_seconds=2, loop_seconds=1, devices=1, usd_per_device_hour=1, real_tokens=1,
                           padded_tokens=1, flops=1, flops_executed=1, peak=None, peak_bytes=1)
    assert "cost/mfu" not in unknown  # an unknown device's MFU is not guessed


def test_cost_table_renders_markdown_and_csv():
    rows = {"baseline": {"cost/usd": 0.5, "tokens/real": 10.0}, "mosaic": {"cost/usd": 0.25}}
    md = cost_table(rows, "md").splitlines()
    assert md[0] == "| run | cost/usd | tokens/real |" and md[3] == "| mosaic | 0.25 |  |"
    assert cost_table(rows, "csv").splitlines() == ["run,cost/usd,tokens/real", "baseline,0.5,10.0", "mosaic,0.25,"]


def test_cost_md_says_which_time_is_priced():
    rows = {"mosaic": {"cost/stage_seconds": 10.0, "cost/loop_seconds": 6.0, "cost/usd": 0.1}}
    md = cost_table(rows, "md").splitlines()
    assert md[-1] == TIME_NOTE and "`cost/usd` price it" in TIME_NOTE
    assert "stage" not in cost_table({"a": {"cost/usd": 1.0}}, "md")


def test_stage_clock_carries_the_time_of_earlier_segments():
    clock = StageClock()
    first = clock.elapsed()
    clock.resume_from(100.0)
    assert 100.0 + first <= clock.elapsed() < 100.0 + first + 60

"""Step plans, the three batching regimes, and proof that packed samples never see each other."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.jsonl import write_jsonl
from mosaic_it.train.batching import collate, plan_steps
from mosaic_it.train.data import IGNORE, encode_all, load_records
from mosaic_it.train.run import run_training


@pytest.fixture(scope="module")
def examples(sample_data, embedded_tokenizer):
    records = json.loads(sample_data.read_text(encoding="utf-8"))[:12]
    return encode_all(records, embedded_tokenizer, "chat_template", 96)[0]


def test_an_epoch_visits_every_sample_once_and_ranks_get_disjoint_batches():
    lengths = [5, 50, 7, 33, 12, 90, 1, 64, 20, 8, 70, 3]
    steps = plan_steps(lengths, batch_size=2, grad_accum=1, world_size=2, seed=3,
                       group_by_length=True, epochs=1, max_steps=None)
    assert len(steps) == 3 and all(len(step) == 2 for step in steps)
    seen = [i for step in steps for micro in step for i in micro]
    assert sorted(seen) == list(range(12))
    rank0 = {i for step in steps for micro in step[0::2] for i in micro}
    rank1 = {i for step in steps for micro in step[1::2] for i in micro}
    assert not rank0 & rank1
    # Length grouping puts similar lengths together: each batch spans less than the whole range.
    assert all(max(lengths[i] for i in m) - min(lengths[i] for i in m) < 89 for s in steps for m in s)


def test_plans_are_a_function_of_the_seed():
    lengths = list(range(1, 40))
    plan = lambda seed: plan_steps(lengths, 4, 2, 1, seed, False, 2.0, None)  # noqa: E731
    assert plan(1) == plan(1) and plan(1) != plan(2)
    assert len(plan(1)) == 10  # 10 micro-batches per epoch, two epochs, two per step
    assert len(plan_steps(lengths, 4, 2, 1, 0, True, 1.0, max_steps=7)) == 7  # epochs cycle


def test_regimes_count_real_and_computed_tokens(examples):
    batch = examples[:3]
    real = sum(len(e) for e in batch)
    padded = collate(batch, "pad_to_max", 96, 0)
    dynamic = collate(batch, "dynamic", 96, 0)
    packed = collate(batch, "packed", 96, 0)
    assert padded.real_tokens == dynamic.real_tokens == packed.real_tokens == real
    assert padded.padded_tokens == 3 * 96
    assert dynamic.padded_tokens == 3 * max(len(e) for e in batch)
    assert packed.padded_tokens == real and packed.tensors["input_ids"].shape == (1, real)
    assert padded.target_tokens == dynamic.target_tokens == packed.target_tokens
    # Positions restart at every sample boundary.
    positions = packed.tensors["position_ids"][0].tolist()
    assert positions.count(0) == 3
    # No position learns to predict the next sample's first token.
    ends = [sum(len(e) for e in batch[: k + 1]) - 1 for k in range(3)]
    assert all(packed.targets[0, end] == IGNORE for end in ends)


def test_packed_samples_do_not_attend_to_each_other(tiny_llama_dir, examples):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    first, second = examples[0], examples[1]
    packed = collate([first, second], "packed", 96, 0)
    with torch.no_grad():
        together = model(**packed.tensors, use_cache=False).logits[0, len(first):]
        alone = model(input_ids=torch.tensor([second.input_ids]), use_cache=False).logits[0]
        # Control: the same row with positions running on lets the second sample see the first.
        leaky = model(input_ids=packed.tensors["input_ids"], use_cache=False).logits[0, len(first):]
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    assert (leaky - alone).abs().max() > 1e-3


def test_every_regime_trains_to_the_same_losses(tmp_path, tiny_llama_dir, sample_data):
    data = tmp_path / "train.jsonl"
    write_jsonl(data, load_records(sample_data, max_records=24))
    losses = {}
    for regime in ("pad_to_max", "dynamic", "packed"):
        cfg = TrainConfig(model=str(tiny_llama_dir), data=str(data), output_dir=str(tmp_path / regime),
                          method="full", batching=regime, max_length=96, batch_size=4, max_steps=4,
                          learning_rate=1e-3, sample_max_new_tokens=0)
        losses[regime] = run_training(cfg, TrackingConfig(enabled=False)).losses
    assert len(losses["packed"]) == 4
    for regime in ("dynamic", "packed"):
        assert losses[regime] == pytest.approx(losses["pad_to_max"], abs=1e-4), regime

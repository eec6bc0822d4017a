"""Held-out loss (exact), adapter loading, probe building and generation on real models."""
from __future__ import annotations

import json
import math

import pytest
import torch

from mosaic_it.config.evaluate import GenerationConfig
from mosaic_it.evaluate.heldout import response_loss
from mosaic_it.evaluate.model import load_model
from mosaic_it.evaluate.mosaic_following import build_probes, probe_key, probe_targets
from mosaic_it.train.data import IGNORE, encode


@pytest.fixture(scope="module")
def records(sample_data):
    return json.loads(sample_data.read_text(encoding="utf-8"))[:40]


def hf_loss_sum(model, example):
    """Reference: transformers' own mean loss over the shifted labels, times their count."""
    ids = torch.tensor([example.input_ids])
    labels = torch.tensor([example.labels])
    with torch.no_grad():
        mean = model(input_ids=ids, labels=labels).loss.item()
    return mean * int((labels[:, 1:] != IGNORE).sum()), int((labels[:, 1:] != IGNORE).sum())


def test_heldout_loss_is_exact_response_only_cross_entropy(tiny_llama_dir, records):
    model, tokenizer = load_model(str(tiny_llama_dir), "cpu")
    examples = [encode(r, tokenizer, "chat_template", 256)[0] for r in records[:6]]
    total, tokens = response_loss(model, examples)
    expected = [hf_loss_sum(model, e) for e in examples]
    assert tokens == sum(n for _, n in expected)
    assert total == pytest.approx(sum(s for s, _ in expected), rel=1e-5)
    # A random 49k-way model is near-uniform: the loss sits close to log(vocab).
    assert abs(total / tokens - math.log(len(tokenizer))) < 1.0


def test_packed_rows_give_each_records_own_loss_and_a_mixing_attention_runs_records_alone(tiny_llama_dir, records):
    from mosaic_it.evaluate import heldout

    model, tokenizer = load_model(str(tiny_llama_dir), "cpu")
    examples = [encode(r, tokenizer, "chat_template", 256)[0] for r in records[6:16]]
    expected = [hf_loss_sum(model, e) for e in examples]
    rows = heldout.pack_rows([len(e) for e in examples], heldout.ROW_TOKENS)
    assert len(rows) < len(examples) and sorted(k for row in rows for k in row) == list(range(len(examples)))
    packed = heldout.record_losses(model, examples)
    assert [n for _, n in packed] == [n for _, n in expected]
    assert [s for s, _ in packed] == pytest.approx([s for s, _ in expected], rel=1e-5)
    saved = model.config._attn_implementation
    model.config._attn_implementation = "sdpa"  # transformers' own: would attend across a packed row
    try:
        alone = heldout.record_losses(model, examples)
    finally:
        model.config._attn_implementation = saved
    assert [s for s, _ in alone] == pytest.approx([s for s, _ in expected], rel=1e-5)


def test_rows_hold_at_most_their_budget_and_a_long_record_goes_alone():
    from mosaic_it.evaluate.heldout import pack_rows

    assert pack_rows([5, 3, 9, 4, 2], 10) == [[4, 1, 3], [0], [2]]
    assert pack_rows([30, 3], 10) == [[1], [0]]
    assert pack_rows([3, 3], 0) == [[0], [1]]
    assert pack_rows([], 10) == []


def test_adapter_directory_is_merged_into_its_base(tiny_llama_dir, tmp_path, records):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    peft_model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)  # a freshly initialised adapter would be a no-op
    peft_model.save_pretrained(tmp_path / "model")  # laid out like runs/train/<arm>/model/
    peft_model.eval()

    merged, tokenizer = load_model(str(tmp_path), "cpu")  # the arm directory is enough
    plain, _ = load_model(str(tiny_llama_dir), "cpu")
    example = encode(records[0], tokenizer, "chat_template", 128)[0]
    with torch.no_grad():
        reference = peft_model(input_ids=torch.tensor([example.input_ids])).logits
    got = merged(input_ids=torch.tensor([example.input_ids])).logits
    untouched = plain(input_ids=torch.tensor([example.input_ids])).logits
    assert torch.allclose(got, reference, atol=1e-4)
    assert not torch.allclose(got, untouched, atol=1e-3)


def test_missing_model_dir_is_a_user_error(tmp_path):
    from mosaic_it.errors import MosaicItError

    with pytest.raises(MosaicItError, match="does not exist"):
        load_model(str(tmp_path / "nope"), "cpu")


def test_probes_cover_every_strategy_and_rule_deterministically(records):
    probes = build_probes(records, per_rule=2, max_instructions=4, seed=7)
    keys = [probe_key(p) for p in probes]
    wanted = {s if r is None else f"{s}/{r}" for s, r in probe_targets()}
    assert set(keys) == wanted and all(keys.count(k) == 2 for k in wanted)
    again = build_probes(records, per_rule=2, max_instructions=4, seed=7)
    assert [p["instruction"] for p in again] == [p["instruction"] for p in probes]
    assert all(2 <= p["count"] <= 4 for p in probes)


@pytest.mark.slow
def test_batched_greedy_generation_matches_one_by_one_on_the_embedded_model(embedded_model):
    from mosaic_it.evaluate.generate import generate

    model, tokenizer = embedded_model
    prompts = ["What is the capital of France?", "Name a color.", "Write one sentence about the sea and the sky."]
    batched = generate(model, tokenizer, prompts, GenerationConfig(max_new_tokens=8, batch_size=3))
    single = generate(model, tokenizer, prompts, GenerationConfig(max_new_tokens=8, batch_size=1))
    assert batched == single
    assert "Paris" in batched[0]

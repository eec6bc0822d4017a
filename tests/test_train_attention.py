"""The varlen attention path: packed rows give the logits of each sample alone, with no row mask."""
from __future__ import annotations

import json

import pytest
import torch
from transformers.masking_utils import create_causal_mask

from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.train import attention
from mosaic_it.train.batching import collate
from mosaic_it.train.data import encode_all
from mosaic_it.train.model import load_model


@pytest.fixture(scope="module")
def examples(sample_data, embedded_tokenizer):
    records = json.loads(sample_data.read_text(encoding="utf-8"))[:3]
    return encode_all(records, embedded_tokenizer, "chat_template", 96)[0]


def test_sample_spans_cut_at_every_position_reset():
    assert attention.sample_spans(torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])) == [(0, 3), (3, 5), (5, 9)]
    assert attention.sample_spans(torch.tensor([[0, 1, 2, 3]])) is None  # one sample: plain causal
    assert attention.sample_spans(torch.tensor([[0, 1], [0, 1]])) is None  # padded batches are not packed


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_varlen_packed_logits_equal_each_sample_alone(tiny_llama_dir, examples, impl):
    cfg = TrainConfig(model=str(tiny_llama_dir), method="full", attn_implementation=impl)
    model = load_model(cfg, torch.device("cpu")).eval()
    assert model.config._attn_implementation == attention.VARLEN_NAMES[impl]
    packed = collate(examples, "packed", 96, 0)
    with torch.no_grad():
        together = model(**packed.tensors, use_cache=False).logits[0]
        alone = torch.cat([model(input_ids=torch.tensor([e.input_ids]), use_cache=False).logits[0]
                           for e in examples])
        embeds = model.get_input_embeddings()(packed.tensors["input_ids"])
        mask = create_causal_mask(config=model.config, inputs_embeds=embeds, attention_mask=None, cache=None,
                                  position_ids=packed.tensors["position_ids"])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    assert mask is None  # no (row x row) block-diagonal mask is ever built


def test_a_packed_forward_reads_its_cuts_once_not_once_per_layer(tiny_llama_dir, examples, monkeypatch):
    found = []
    real = attention.find_spans
    monkeypatch.setattr(attention, "find_spans", lambda ids: found.append(ids) or real(ids))
    model = load_model(TrainConfig(model=str(tiny_llama_dir), method="full"), torch.device("cpu"))
    packed = collate(examples, "packed", 96, 0)
    model(**packed.tensors, use_cache=False).logits.sum().backward()
    assert len(found) == 1 and model.config.num_hidden_layers == 2
    moved = packed.tensors["position_ids"].clone()
    moved[0, 1:] = torch.arange(moved.shape[1] - 1)  # the same tensor changed in place: read again
    model(input_ids=packed.tensors["input_ids"], position_ids=moved, use_cache=False)
    moved.copy_(packed.tensors["position_ids"])
    with torch.no_grad():
        model(input_ids=packed.tensors["input_ids"], position_ids=moved, use_cache=False)
    assert len(found) == 3


def test_padded_batches_keep_the_stock_masked_path(tiny_llama_dir, examples):
    from transformers import AutoModelForCausalLM

    stock = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="sdpa").eval()
    ours = load_model(TrainConfig(model=str(tiny_llama_dir), method="full"), torch.device("cpu")).eval()
    batch = collate(examples, "dynamic", 96, 0)
    with torch.no_grad():
        expected = stock(**batch.tensors, use_cache=False).logits
        got = ours(**batch.tensors, use_cache=False).logits
    keep = batch.tensors["attention_mask"].bool()
    torch.testing.assert_close(got[keep], expected[keep], atol=1e-5, rtol=1e-5)


def test_packed_attention_cost_is_per_sample(examples):
    packed = collate(examples, "packed", 96, 0)
    squares = sum(len(e) ** 2 for e in examples)
    assert packed.sum_sq_real == packed.sum_sq_padded == squares
    assert packed.padded_tokens ** 2 > squares  # what a dense row mask would have cost


def test_flash_attention_without_the_package_is_a_one_line_error(tiny_llama_dir):
    cfg = TrainConfig(model=str(tiny_llama_dir), attn_implementation="flash_attention_2")
    with pytest.raises(MosaicItError, match="flash_attention_2 needs") as err:
        load_model(cfg, torch.device("cpu"))
    assert "\n" not in str(err.value)

"""Generation backend selection (hf | vllm | auto) and the evaluation's attention setting."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from mosaic_it.config.evaluate import EvaluateConfig, GenerationConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.evaluate.backend import make_generator, pick_backend
from mosaic_it.evaluate.context import EvalContext
from mosaic_it.evaluate.generate import generate
from mosaic_it.evaluate.model import load_model
from mosaic_it.train.attention import VARLEN_NAMES

NO_VLLM = importlib.util.find_spec("vllm") is None


@pytest.fixture
def installed_vllm(tmp_path, monkeypatch):
    """An importable (empty) package named vllm: selection only asks whether it is installed."""
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


@pytest.mark.skipif(not NO_VLLM, reason="vllm is installed here")
def test_without_vllm_auto_is_hf_and_an_explicit_request_says_how_to_install():
    assert pick_backend("hf", "auto") == "hf"
    assert pick_backend("auto", "auto") == "hf"
    with pytest.raises(MosaicItError, match=r"pip install 'mosaic-it\[vllm\]'") as err:
        pick_backend("vllm", "auto")
    assert "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_with_vllm_but_no_gpu_auto_falls_back_and_vllm_is_refused(installed_vllm):
    assert importlib.util.find_spec("vllm") is not None
    assert pick_backend("auto", "auto") == "hf"
    with pytest.raises(MosaicItError, match="needs a CUDA device"):
        pick_backend("vllm", "auto")
    assert pick_backend("auto", "cpu") == "hf"


def test_the_hf_generator_is_what_eval_context_generates_with(tiny_llama_dir):
    cfg = EvaluateConfig(model=str(tiny_llama_dir), device="cpu", generation=GenerationConfig(max_new_tokens=4))
    model, tokenizer = load_model(cfg.model, "cpu", cfg.attn_implementation)
    ctx = EvalContext(cfg, model, tokenizer, tiny_llama_dir, generator=make_generator(cfg, model, tokenizer))
    prompts = ["Name a colour.", "Count to three, please."]
    assert ctx.generate(prompts, "test") == generate(model, tokenizer, prompts, cfg.generation, "direct")


def test_evaluation_uses_the_attention_setting(tiny_llama_dir):
    model, _ = load_model(str(tiny_llama_dir), "cpu", "eager")
    assert model.config._attn_implementation == VARLEN_NAMES["eager"]
    with pytest.raises(MosaicItError, match="flash_attention_2 needs"):
        load_model(str(tiny_llama_dir), "cpu", "flash_attention_2")

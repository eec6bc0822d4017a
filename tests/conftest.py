"""Fixtures shared across the suite: the real embedded tokenizer, the shared data, a scratch repo."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SAMPLE_DATA = REPO_ROOT / "data" / "alpaca_sample.json"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not present beside the repository")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_tokenizer():
    from mosaic_it.models.tokenizer import load_tokenizer

    return load_tokenizer(None)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, embedded_tokenizer) -> Path:
    """A random-init 2-layer Llama (hidden 32) with the embedded tokenizer, saved like any HF model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(embedded_tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=embedded_tokenizer.bos_token_id, eos_token_id=embedded_tokenizer.eos_token_id,
                         pad_token_id=embedded_tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    target = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(target, safe_serialization=True)
    embedded_tokenizer.save_pretrained(target)
    return target


@pytest.fixture(autouse=True)
def no_mlflow_state_between_tests():
    """MLflow's fluent API keeps an active experiment and a run stack per process; a test that
    leaves either behind would steer every later test's runs (seen: a resumed run refused)."""
    yield
    import sys

    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is None:
        return
    while fluent.active_run() is not None:
        fluent.end_run()
    fluent._active_experiment_id = None

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
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: torch's OpenMP threads spin-wait for a core the other worker holds
    # and slow down many times over, so each worker and every process it starts (stages, servers,
    # launchers inherit os.environ) computes on one thread. Set before anything imports torch.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# Session servers are per process: under pytest-xdist (`--dist loadgroup`) every test that uses one
# runs on the same worker, so each server starts once per suite, not once per worker.
SERVER_GROUPS = {"prefect_api": "prefect-server", "mlflow_server_url": "mlflow-server"}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, group in SERVER_GROUPS.items():
            if fixture in item.fixturenames:
                item.add_marker(pytest.mark.xdist_group(group))
                break


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
def embedded_model():
    """The real embedded model and its tokenizer, loaded once for the tests about its own behaviour
    (no test changes its weights)."""
    from mosaic_it.evaluate.model import load_model

    return load_model(None, "cpu")


@pytest.fixture
def data16(tmp_path, sample_data) -> Path:
    """The first 16 records of the bundled sample as a JSONL training file."""
    from mosaic_it.jsonl import write_jsonl
    from mosaic_it.train.data import load_records

    path = tmp_path / "train.jsonl"
    write_jsonl(path, load_records(sample_data, max_records=16))
    return path


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


@pytest.fixture
def can_fork():
    """Skips unless mosaic_it.mosaic.forked may fork here: os.fork, two cores and no Python thread
    but this one (can_fork stops tqdm's monitor thread, which another test's bar may have left)."""
    import threading

    from mosaic_it.mosaic import forked

    if not forked.can_fork():
        pytest.skip(f"needs os.fork, two cores and no other thread: {threading.enumerate()}")


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary Prefect API server for the whole session (a server start costs tens of seconds
    on two busy cores). Flows, tasks and artifacts of different tests never share an id, and every
    test reads back only its own runs."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def mlflow_server_url(tmp_path_factory) -> str:
    """One real `mlflow server` on loopback for the session; each test uses its own experiment or
    registered model names, so runs never mix."""
    from servers import mlflow_server

    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


@pytest.fixture(autouse=True)
def no_mlflow_state_between_tests():
    """MLflow's fluent API keeps an active experiment and a run stack per process, and copies the
    tracking URI and experiment id into os.environ, where every later subprocess inherits them; a
    test that leaves any of these behind would steer later tests' runs (seen: a resumed run refused)."""
    before = {key: value for key, value in os.environ.items() if key.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_") and k not in before]:
        del os.environ[key]
    os.environ.update(before)
    import sys

    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is None:
        return
    while fluent.active_run() is not None:
        fluent.end_run()
    fluent._active_experiment_id = None

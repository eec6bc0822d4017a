"""train.compile: compiled decoder layers train to the eager losses, packed rows included."""
from __future__ import annotations

import pytest
import torch

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.train.compile import compile_layers
from mosaic_it.train.run import run_training

NO_TRACKING = TrackingConfig(enabled=False)


def config(model_dir, data, out, **changes) -> TrainConfig:
    settings = dict(model=str(model_dir), data=str(data), output_dir=str(out), max_length=96, batch_size=2,
                    max_steps=6, learning_rate=1e-2, warmup_ratio=0.0, sample_max_new_tokens=4, method="full",
                    batching="packed")
    return TrainConfig(**{**settings, **changes})


@pytest.fixture
def dynamo_counters():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    yield counters
    torch._dynamo.reset()


@pytest.mark.slow
def test_compiled_layers_train_to_the_eager_losses(tmp_path, tiny_llama_dir, data16, dynamo_counters):
    # aot_eager traces each layer through dynamo and AOT autograd as inductor does, without the
    # minutes of kernel generation a CPU would spend; inductor itself is measured on GPUs
    # (benchmarks/bench_mfu.py, docs/benchmarks.md). Packed rows are the hard case: the
    # per-sample attention cuts are read on the host, outside the graphs, so each new packing
    # reuses them instead of compiling again.
    eager = run_training(config(tiny_llama_dir, data16, tmp_path / "eager"), NO_TRACKING)
    graphs: list[int] = []
    compiled = run_training(config(tiny_llama_dir, data16, tmp_path / "compiled", compile="aot_eager"), NO_TRACKING,
                            callbacks=[lambda log: graphs.append(dynamo_counters["stats"]["unique_graphs"])])
    assert compiled.losses == pytest.approx(eager.losses, rel=1e-6, abs=0)
    assert graphs[0] >= 1  # the layers did run compiled
    assert graphs[-3:] == [graphs[-1]] * 3  # once shapes go dynamic, new packings compile nothing
    # The greedy samples after training decode eagerly: no graphs for decoding shapes.
    assert dynamo_counters["stats"]["unique_graphs"] == graphs[-1]
    assert (compiled.output_dir / "samples.json").read_text().count('"response"') == 2


def test_a_model_without_decoder_layers_is_refused_in_one_line():
    with pytest.raises(MosaicItError, match="has no transformers decoder layers") as err:
        compile_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    assert "\n" not in str(err.value)


def test_compile_accepts_a_backend_and_true_means_inductor():
    assert TrainConfig(compile=True).compile is True
    assert TrainConfig(compile="aot_eager").compile == "aot_eager"
    assert [TrainConfig(compile=c).compile_backend for c in (False, True, "inductor", "aot_eager")] == [
        None, "inductor", "inductor", "aot_eager"]
    with pytest.raises(ValueError):
        TrainConfig(compile="cudagraphs")

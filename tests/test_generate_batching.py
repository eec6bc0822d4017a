"""`evaluate.generation.batching: auto` picks the decoder for the model's device."""
from __future__ import annotations

from types import SimpleNamespace

import torch

from mosaic_it.config.evaluate import GenerationConfig
from mosaic_it.evaluate.generate import resolve_batching


def on(device: str) -> SimpleNamespace:
    return SimpleNamespace(device=torch.device(device))


def test_auto_is_continuous_on_cpu_and_static_on_cuda():
    auto = GenerationConfig()
    assert auto.batching == "auto"
    assert resolve_batching(on("cpu"), auto).batching == "continuous"
    assert resolve_batching(on("cuda"), auto).batching == "static"
    assert resolve_batching(on("cuda"), auto).batch_size == auto.batch_size


def test_an_explicit_choice_is_kept_on_every_device():
    for choice in ("continuous", "static"):
        gen = GenerationConfig(batching=choice)
        assert resolve_batching(on("cpu"), gen).batching == choice
        assert resolve_batching(on("cuda"), gen).batching == choice

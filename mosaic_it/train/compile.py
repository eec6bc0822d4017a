"""`train.compile`: torch.compile each decoder layer, the way torchtune compiles its models.

Compiling layer by layer instead of the whole model keeps compilation short (every layer of a
model shares one graph) and leaves what runs between layers (embeddings, mask building, the
varlen path's host-side sample cuts, the loss) in eager mode. What it buys on a GPU is fused
elementwise work: RMSNorm, rotary embeddings, SiLU-times-up and autocast's casts run as a few
kernels instead of dozens (numbers in docs/benchmarks.md). Parameter names, and so checkpoints
and saved models, are those of the uncompiled model.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from mosaic_it.errors import MosaicItError


def compile_layers(model: Any, backend: str = "inductor") -> int:
    """Compile every decoder layer of `model` in place; the number compiled."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    if not layers:
        raise MosaicItError(f"train.compile: {type(model).__name__} has no transformers decoder layers to "
                            "compile; set train.compile=false")
    for layer in layers:
        layer.compile(backend=backend)
    return len(layers)


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Run compiled layers eagerly: a few greedy samples are not worth compiling decode shapes for."""
    with torch.compiler.set_stance("force_eager"):
        yield

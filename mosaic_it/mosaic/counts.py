"""How many instructions go into a sample: one sampler per wrap mode, all bounded to 1..K.

The skewed modes draw an offset x from a heavy- or light-tailed distribution (redrawn until it is
below K) and use K - floor(x), so most samples carry close to K instructions.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

Sampler = Callable[[np.random.Generator, int], int]
UNBOUNDED = 1 << 30  # "as many as the token budget allows"
# Uniform counts drawn at a time: one call for many, the same numbers one call each would give.
BLOCK = 4096


def _offset_sampler(draw: Callable[[np.random.Generator], float], positive_only: bool = False) -> Sampler:
    def sample(rng: np.random.Generator, k: int) -> int:
        while True:
            x = draw(rng)
            if x < k and (x > 0 or not positive_only):
                # floor, not truncation toward zero, so a negative offset cannot exceed K
                return k - max(0, math.floor(x))

    return sample


WRAP_MODES: dict[str, Sampler] = {
    "uniform": lambda rng, k: int(rng.integers(1, k + 1)),
    "fix_max": lambda rng, k: k,
    "max_length": lambda rng, k: UNBOUNDED,
    "exp": _offset_sampler(lambda rng: rng.exponential(1.0)),
    "pareto": _offset_sampler(lambda rng: rng.pareto(1.0) - 1.0),
    "lognormal": _offset_sampler(lambda rng: rng.lognormal(0.0, 1.0)),
    "logistic2": _offset_sampler(lambda rng: rng.logistic(0.0, 2.0), positive_only=True),
}


def _sampler(mode: str) -> Sampler:
    try:
        return WRAP_MODES[mode]
    except KeyError:
        raise ValueError(f"unknown wrap mode {mode!r}; choose one of {sorted(WRAP_MODES)}") from None


def draw_count(mode: str, rng: np.random.Generator, max_instructions: int) -> int:
    return _sampler(mode)(rng, max_instructions)


def count_stream(mode: str, rng: np.random.Generator, max_instructions: int) -> Iterator[int]:
    """draw_count(mode, rng, max_instructions), again and again. Uniform counts come in blocks:
    numpy draws a block from the same stream of bounded integers as one call per number
    (tests/test_mosaic_counts.py), at a fraction of the calls' overhead; the generator is then
    ahead of the last number used, so it must serve nothing else."""
    if mode == "uniform":
        while True:
            yield from rng.integers(1, max_instructions + 1, size=BLOCK).tolist()
    sampler = _sampler(mode)
    while True:
        yield sampler(rng, max_instructions)

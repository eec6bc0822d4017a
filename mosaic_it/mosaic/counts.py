"""How many instructions go into a sample: one sampler per wrap mode, all bounded to 1..K.

The skewed modes draw an offset x from a heavy- or light-tailed distribution (redrawn until it is
below K) and use K - floor(x), so most samples carry close to K instructions.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Sampler = Callable[[np.random.Generator, int], int]
UNBOUNDED = 1 << 30  # "as many as the token budget allows"


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


def draw_count(mode: str, rng: np.random.Generator, max_instructions: int) -> int:
    try:
        sampler = WRAP_MODES[mode]
    except KeyError:
        raise ValueError(f"unknown wrap mode {mode!r}; choose one of {sorted(WRAP_MODES)}") from None
    return sampler(rng, max_instructions)

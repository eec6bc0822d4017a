"""random.Random's choice() and shuffle(), compiled with the rest of the engine.

The standard library's are Python code (random.py) and took about a sixth of packing's time.
These take the same bits from the same generator in the same order (rng.getrandbits, as
random.Random's _randbelow does), so every sample stays byte-identical; tests/test_draws.py
checks them against random.Random's own over many seeds and sizes.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n), n > 0: k bits at a time, drawn again until below n."""
    getrandbits: Any = rng.getrandbits
    k = n.bit_length()
    r: int = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return r


def choice(rng: random.Random, items: Sequence[T]) -> T:
    if not len(items):
        raise IndexError("cannot choose from an empty sequence")
    return items[below(rng, len(items))]


def shuffle(rng: random.Random, items: list[Any]) -> None:
    """Fisher-Yates from the end, as random.Random.shuffle."""
    for i in range(len(items) - 1, 0, -1):
        j = below(rng, i + 1)
        items[i], items[j] = items[j], items[i]

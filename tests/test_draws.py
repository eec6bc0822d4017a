"""draws.choice and draws.shuffle take the very draws random.Random's own would: same results,
same generator state after, over many seeds, sizes around each power of two and mixed call orders."""
from __future__ import annotations

import random

import pytest

from mosaic_it.mosaic import draws

SIZES = sorted({1, 2, 3, *range(4, 70), *(2**k + d for k in range(2, 17) for d in (-1, 0, 1)), 51_924})


@pytest.mark.parametrize("seed", [0, 1, 7, 2**40 + 3])
def test_choice_and_shuffle_draw_what_random_random_draws(seed: int) -> None:
    ours, theirs = random.Random(seed), random.Random(seed)
    for size in SIZES:
        items = list(range(size))
        assert draws.choice(ours, items) == theirs.choice(items)
        assert draws.choice(ours, tuple(items)) == theirs.choice(tuple(items))
        mine, stdlib = items[:], items[:]
        draws.shuffle(ours, mine)
        theirs.shuffle(stdlib)
        assert mine == stdlib
        assert ours.random() == theirs.random()  # the generators stay in step
    assert ours.getstate() == theirs.getstate()


def test_choice_refuses_an_empty_sequence_as_random_does() -> None:
    with pytest.raises(IndexError):
        draws.choice(random.Random(0), [])
    items: list[int] = []
    draws.shuffle(random.Random(0), items)
    assert items == []

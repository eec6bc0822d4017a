"""Mask rules: some instructions must be ignored. Add a rule with one decorated function.

Every mask hides at least one instruction and at most half of them, so something is always answered.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

from mosaic_it.mosaic.rules import Args, mask_rule
from mosaic_it.mosaic.text_keys import word_count

MASK_SHARE = (0.1, 0.5)


def masked_count(n: int, rng: random.Random) -> int:
    return max(1, int(n * rng.uniform(*MASK_SHARE)))


def max_masked(n: int) -> int:
    return max(1, int(n * MASK_SHARE[1]))


def _kept(n: int, masked: set[int]) -> list[int]:
    return [p for p in range(n) if p not in masked]


def _extreme_by_words(texts: Sequence[str], k: int, longest: bool) -> set[int]:
    order = sorted(range(len(texts)), key=lambda p: word_count(texts[p]), reverse=longest)
    return set(order[:k])


def _unambiguous_k(texts: Sequence[str], rng: random.Random, longest: bool) -> Args | None:
    """A count k such that 'the k longest (shortest)' names one set: no tie across the cut."""
    counts = sorted((word_count(t) for t in texts), reverse=longest)
    wanted = masked_count(len(texts), rng)
    candidates = [k for k in range(1, max_masked(len(texts)) + 1) if counts[k - 1] != counts[k]]
    if not candidates:
        return None
    return {"k": min(candidates, key=lambda k: (abs(k - wanted), k))}


def _random_numbers(texts: Sequence[str], rng: random.Random) -> Args | None:
    k = masked_count(len(texts), rng)
    return {"numbers": sorted(rng.sample(range(1, len(texts) + 1), k))}


def _even_count(texts: Sequence[str], rng: random.Random) -> Args | None:
    # Masking the odd numbers of an odd-sized list would hide more than half of it.
    return {} if len(texts) % 2 == 0 else None


@mask_rule(
    "FIX",
    needs_numbering=True,
    choose=_random_numbers,
    phrasings=(
        "Skip these instructions and do not answer them: {numbers}.",
        "Leave out the instructions numbered {numbers}.",
        "Answer everything except items {numbers}.",
        "Do not respond to instruction(s) {numbers}; answer the rest.",
        "Ignore the following numbers entirely: {numbers}.",
    ),
)
def listed(texts: Sequence[str], args: Args) -> list[int]:
    return _kept(len(texts), {number - 1 for number in args["numbers"]})


@mask_rule(
    "WORD_LONG",
    choose=lambda texts, rng: _unambiguous_k(texts, rng, longest=True),
    phrasings=(
        "Ignore the {k} longest instruction(s), counting words.",
        "Skip the {k} instruction(s) with the most words and answer the others.",
        "Leave the {k} wordiest instruction(s) unanswered.",
        "Do not answer the {k} instruction(s) that have the highest word count.",
    ),
)
def without_longest(texts: Sequence[str], args: Args) -> list[int]:
    return _kept(len(texts), _extreme_by_words(texts, args["k"], longest=True))


@mask_rule(
    "WORD_SHORT",
    choose=lambda texts, rng: _unambiguous_k(texts, rng, longest=False),
    phrasings=(
        "Ignore the {k} shortest instruction(s), counting words.",
        "Skip the {k} instruction(s) with the fewest words and answer the others.",
        "Leave the {k} briefest instruction(s), by word count, unanswered.",
        "Do not answer the {k} instruction(s) that have the lowest word count.",
    ),
)
def without_shortest(texts: Sequence[str], args: Args) -> list[int]:
    return _kept(len(texts), _extreme_by_words(texts, args["k"], longest=False))


@mask_rule(
    "ODD",
    needs_numbering=True,
    choose=_even_count,
    phrasings=(
        "Ignore every odd-numbered instruction; answer only the even-numbered ones.",
        "Skip items 1, 3, 5 and so on, and reply to the even-numbered items.",
        "Only the even-numbered instructions need an answer.",
    ),
)
def without_odd(texts: Sequence[str], args: Args) -> list[int]:
    return [p for p in range(len(texts)) if p % 2 == 1]


@mask_rule(
    "EVEN",
    needs_numbering=True,
    phrasings=(
        "Ignore every even-numbered instruction; answer only the odd-numbered ones.",
        "Skip items 2, 4, 6 and so on, and reply to the odd-numbered items.",
        "Only the odd-numbered instructions need an answer.",
    ),
)
def without_even(texts: Sequence[str], args: Args) -> list[int]:
    return [p for p in range(len(texts)) if p % 2 == 0]

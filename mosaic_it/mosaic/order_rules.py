"""Order rules: the responses appear in an announced order. Add a rule with one decorated function."""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from mosaic_it.mosaic import draws
from mosaic_it.mosaic.rules import Args, order_rule
from mosaic_it.mosaic.text_keys import char_count, first_letter, word_count


def _sorted_positions(texts: Sequence[str], key: Callable[[str], Any], reverse: bool) -> list[int]:
    keys = [key(text) for text in texts]
    # Sorting (-key) rather than reverse=True keeps ties in their given order both ways.
    if reverse:
        return sorted(range(len(texts)), key=lambda p: _negate(keys[p]))
    return sorted(range(len(texts)), key=lambda p: keys[p])


def _negate(value: Any) -> Any:
    return tuple(-ord(c) for c in value) if isinstance(value, str) else -value


def _all_have_letters(texts: Sequence[str], rng: random.Random) -> Args | None:
    return {} if all(first_letter(text) for text in texts) else None


def _random_sequence(texts: Sequence[str], rng: random.Random) -> Args | None:
    sequence = list(range(1, len(texts) + 1))
    while sequence == sorted(sequence):  # an identity "custom order" would teach nothing
        draws.shuffle(rng, sequence)
    return {"sequence": sequence}


@order_rule(
    "FIX",
    needs_numbering=True,
    choose=_random_sequence,
    phrasings=(
        "Answer the instructions in this order: {sequence}.",
        "Give your answers following the sequence {sequence}.",
        "Work through the instructions in the order {sequence}.",
        "Respond to the numbered items in exactly this sequence: {sequence}.",
        "Use the order {sequence} when writing your answers.",
    ),
)
def fixed_sequence(texts: Sequence[str], args: Args) -> list[int]:
    return [number - 1 for number in args["sequence"]]


@order_rule(
    "REVERSE",
    phrasings=(
        "Answer the instructions in reverse order, last one first.",
        "Start with the final instruction and work back to the first.",
        "Write your answers from the bottom of the list to the top.",
        "Respond in the opposite order to the one the instructions are given in.",
        "Go through the instructions backwards when answering.",
    ),
)
def reverse(texts: Sequence[str], args: Args) -> list[int]:
    return list(range(len(texts)))[::-1]


@order_rule(
    "ALPHA",
    choose=_all_have_letters,
    key=first_letter,
    phrasings=(
        "Order your answers alphabetically by the first letter of each instruction.",
        "Answer the instructions sorted A to Z by their first letter.",
        "Arrange the answers in alphabetical order of each instruction's opening letter.",
        "Respond following the alphabet, using the first letter of every instruction (ignore case).",
    ),
)
def alphabetical(texts: Sequence[str], args: Args) -> list[int]:
    return _sorted_positions(texts, first_letter, reverse=False)


@order_rule(
    "REVERSE_ALPHA",
    choose=_all_have_letters,
    key=first_letter,
    phrasings=(
        "Order your answers from Z to A by the first letter of each instruction.",
        "Answer the instructions in reverse alphabetical order of their first letters.",
        "Sort your replies by each instruction's opening letter, descending from Z.",
        "Respond starting with the instruction whose first letter comes latest in the alphabet.",
    ),
)
def reverse_alphabetical(texts: Sequence[str], args: Args) -> list[int]:
    return _sorted_positions(texts, first_letter, reverse=True)


@order_rule(
    "LENGTH_WORD",
    key=word_count,
    phrasings=(
        "Answer the instructions from the fewest words to the most.",
        "Start with the instruction that has the smallest word count and move up.",
        "Order your replies by the number of words in each instruction, shortest first.",
        "Respond to shorter instructions (in words) before longer ones.",
    ),
)
def by_words(texts: Sequence[str], args: Args) -> list[int]:
    return _sorted_positions(texts, word_count, reverse=False)


@order_rule(
    "REVERSE_LENGTH_WORD",
    key=word_count,
    phrasings=(
        "Answer the instructions from the most words to the fewest.",
        "Begin with the instruction that has the highest word count and go down.",
        "Order your replies by the number of words in each instruction, longest first.",
        "Respond to longer instructions (in words) before shorter ones.",
    ),
)
def by_words_descending(texts: Sequence[str], args: Args) -> list[int]:
    return _sorted_positions(texts, word_count, reverse=True)


@order_rule(
    "LENGTH_CHAR",
    key=char_count,
    phrasings=(
        "Answer the instructions from the fewest characters to the most.",
        "Start with the instruction that is shortest in characters and work up.",
        "Order your replies by each instruction's character count, smallest first.",
    ),
)
def by_chars(texts: Sequence[str], args: Args) -> list[int]:
    return _sorted_positions(texts, char_count, reverse=False)


@order_rule(
    "REVERSE_LENGTH_CHAR",
    key=char_count,
    phrasings=(
        "Answer the instructions from the most characters to the fewest.",
        "Start with the instruction that is longest in characters and work down.",
        "Order your replies by each instruction's character count, largest first.",
    ),
)
def by_chars_descending(texts: Sequence[str], args: Args) -> list[int]:
    return _sorted_positions(texts, char_count, reverse=True)


@order_rule(
    "ODD_EVEN",
    needs_numbering=True,
    phrasings=(
        "Answer the odd-numbered instructions first, then the even-numbered ones.",
        "Handle items 1, 3, 5 and so on before items 2, 4, 6 and so on.",
        "Reply to every odd-numbered instruction before any even-numbered one, keeping their order.",
    ),
)
def odd_then_even(texts: Sequence[str], args: Args) -> list[int]:
    positions = range(len(texts))
    return [p for p in positions if p % 2 == 0] + [p for p in positions if p % 2 == 1]


@order_rule(
    "EVEN_ODD",
    needs_numbering=True,
    phrasings=(
        "Answer the even-numbered instructions first, then the odd-numbered ones.",
        "Handle items 2, 4, 6 and so on before items 1, 3, 5 and so on.",
        "Reply to every even-numbered instruction before any odd-numbered one, keeping their order.",
    ),
)
def even_then_odd(texts: Sequence[str], args: Args) -> list[int]:
    positions = range(len(texts))
    return [p for p in positions if p % 2 == 1] + [p for p in positions if p % 2 == 0]

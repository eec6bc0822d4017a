"""Meta-instruction sentences that are not tied to one rule: tags, numbering, ties, number lists."""
from __future__ import annotations

import random
from collections.abc import Sequence

from mosaic_it.mosaic import draws
from mosaic_it.mosaic.layout import Layout

TAG_SENTENCES = (
    "Wrap each answer between {begin} and {end}.",
    "Put {begin} before every answer and {end} after it.",
    "Each reply must open with {begin} and close with {end}.",
    "Enclose every response in the markers {begin} and {end}.",
    "Mark the start of each answer with {begin} and its end with {end}.",
    "Frame your answers like this: {begin}your answer{end}.",
)
NUMBER_SENTENCES = (
    "Label each answer with the number of the instruction it answers.",
    "Prefix every answer with its instruction's number.",
    "Keep the numbering of the instructions on your answers.",
)
PLAIN_SENTENCES = (
    "Answer each of the following instructions.",
    "Respond to every instruction below.",
    "Please handle each request in turn.",
    "Reply to all of these instructions.",
)
TIE_SENTENCES = (
    "Where two instructions tie, keep them in the order given.",
    "Instructions that tie keep their original relative order.",
    "Break any ties by the order in which the instructions appear.",
)
NUMBER_LIST_JOINERS = (", ", "; ", " -> ", " then ", " / ")
NUMBER_LIST_WRAPPERS = ("{}", "[{}]", "({})", "<{}>")
PLAIN_SENTENCE_SHARE = 0.5
NUMBER_SENTENCE_SHARE = 0.5


def format_sentences(layout: Layout, rng: random.Random) -> list[str]:
    sentences = []
    if layout.tagged:
        sentences.append(draws.choice(rng, TAG_SENTENCES).format(begin=layout.begin_tag, end=layout.end_tag))
    if layout.numbered and rng.random() < NUMBER_SENTENCE_SHARE:
        sentences.append(draws.choice(rng, NUMBER_SENTENCES))
    if not sentences and rng.random() < PLAIN_SENTENCE_SHARE:
        sentences.append(draws.choice(rng, PLAIN_SENTENCES))
    return sentences


def number_list(numbers: Sequence[int], rng: random.Random) -> str:
    joined = draws.choice(rng, NUMBER_LIST_JOINERS).join(str(n) for n in numbers)
    return draws.choice(rng, NUMBER_LIST_WRAPPERS).format(joined)


def tie_sentence(rng: random.Random) -> str:
    return draws.choice(rng, TIE_SENTENCES)

"""How a mosaic sample is laid out: numbering, begin/end tags, separators, meta-instruction placement.

The layout is drawn at random per sample, recorded in the provenance, and is all that is needed to
re-render a sample exactly from its source records (which is how `verify` checks it).
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Literal

from mosaic_it.mosaic import draws

# Numbering templates; `{i}` is the 1-based number of the instruction within the sample.
NUMBERING_STYLES = (
    "{i}. ", "{i}) ", "({i}) ", "[{i}] ", "<{i}> ", "#{i} ", "{i}: ", "[{i}]: ",
    "Task {i}: ", "Item {i} - ", "({i})\n", "{i}.\n", "### {i}\n", "<<{i}>>\n",
)
TAG_WORDS = (
    ("BEGIN", "END"), ("START", "STOP"), ("ANSWER", "END ANSWER"), ("REPLY", "END REPLY"),
    ("OPEN", "CLOSE"), ("RESPONSE", "END RESPONSE"), ("OUT", "/OUT"), ("ANS", "/ANS"),
    ("FROM HERE", "TO HERE"), ("SOLUTION", "DONE"), ("HEAD", "TAIL"), ("RES_BEGIN", "RES_END"),
)
TAG_BRACKETS = (
    "<{w}>", "[{w}]", "(({w}))", "<<{w}>>", "|{w}|", "#{w}#", "**{w}**", "{{{w}}}", "@{w}@",
    "~{w}~", "[[{w}]]", "<|{w}|>", "=={w}==", "${w}$",
)
INSTRUCTION_SEPARATORS = ("\n", "\n\n")
RESPONSE_SEPARATORS = ("\n\n", "\n\n\n")
META_SEPARATORS = ("\n", "\n\n")

NUMBERED_SHARE = 0.8
TAGGED_SHARE = 0.5
LOWERCASE_TAG_SHARE = 0.3


@dataclass(frozen=True)
class Layout:
    numbering: str | None
    begin_tag: str
    end_tag: str
    instruction_separator: str
    response_separator: str
    meta_position: Literal["before", "after"]
    meta_separator: str

    @property
    def numbered(self) -> bool:
        return self.numbering is not None

    @property
    def tagged(self) -> bool:
        return bool(self.begin_tag)

    def number(self, position: int) -> str:
        return _number(self.numbering, position)

    def as_dict(self) -> dict:
        # Every field is a str or None, so a shallow dict equals asdict() without its deep copy,
        # which cost 3% of a whole augment run.
        return dict(zip(_FIELDS, self.as_tuple()))

    def as_tuple(self) -> tuple:
        return (self.numbering, self.begin_tag, self.end_tag, self.instruction_separator,
                self.response_separator, self.meta_position, self.meta_separator)

    @classmethod
    def from_dict(cls, data: dict) -> "Layout":
        return cls(**data)


_FIELDS = tuple(f.name for f in fields(Layout))  # as_tuple()'s order (tests/test_augment_finisher.py)


@lru_cache(maxsize=4096)
def _number(numbering: str | None, position: int) -> str:
    return numbering.format(i=position + 1) if numbering else ""


def draw_layout(rng: random.Random) -> Layout:
    numbering = draws.choice(rng, NUMBERING_STYLES) if rng.random() < NUMBERED_SHARE else None
    begin_tag = end_tag = ""
    if rng.random() < TAGGED_SHARE:
        begin_word, end_word = draws.choice(rng, TAG_WORDS)
        if rng.random() < LOWERCASE_TAG_SHARE:
            begin_word, end_word = begin_word.lower(), end_word.lower()
        bracket = draws.choice(rng, TAG_BRACKETS)
        begin_tag, end_tag = bracket.format(w=begin_word), bracket.format(w=end_word)
    return Layout(
        numbering=numbering,
        begin_tag=begin_tag,
        end_tag=end_tag,
        instruction_separator=draws.choice(rng, INSTRUCTION_SEPARATORS),
        response_separator=draws.choice(rng, RESPONSE_SEPARATORS),
        meta_position=draws.choice(rng, ("before", "after")),
        meta_separator=draws.choice(rng, META_SEPARATORS),
    )


def instruction_parts(layout: Layout, texts: Sequence[str], meta: Sequence[str]) -> list[str]:
    """The instruction as a list of pieces whose concatenation is the full instruction text; `meta`
    is the meta-instruction's pieces (none: no meta-instruction)."""
    block: list[str] = []
    for position, text in enumerate(texts):
        if position:
            block.append(layout.instruction_separator)
        block.extend((layout.number(position), text))
    if not meta:
        return block
    if layout.meta_position == "before":
        return [*meta, layout.meta_separator, *block]
    return [*block, layout.meta_separator, *meta]


def instruction_scaffold(layout: Layout, count: int, meta: Sequence[str]) -> list[str]:
    """The pieces instruction_parts() adds to `count` texts, in no particular order: for sums over
    the pieces without rendering the sample (tests/test_record_sums.py checks the two agree)."""
    return [*instruction_frame(layout, count), *instruction_tail(layout, meta)]


def instruction_frame(layout: Layout, count: int) -> tuple[str, ...]:
    """instruction_scaffold()'s numbers and separators: one tuple, kept, for every sample with this
    numbering, separator and count, so that sums over it can be kept too."""
    return _instruction_frame(layout.numbering, layout.instruction_separator, count)


def instruction_tail(layout: Layout, meta: Sequence[str]) -> list[str]:
    """instruction_scaffold()'s other pieces: the meta-instruction's, and the separator after it."""
    return [*meta, layout.meta_separator] if meta else []


def output_scaffold(layout: Layout, response_ids: Sequence[int]) -> list[str]:
    """The pieces output_parts() adds to the responses, in no particular order."""
    return [*output_numbers(layout, response_ids), *output_frame(layout, len(response_ids))]


def output_numbers(layout: Layout, response_ids: Sequence[int]) -> list[str]:
    return [layout.number(position) for position in response_ids]


def output_frame(layout: Layout, count: int) -> tuple[str, ...]:
    """output_scaffold()'s tags and separators for `count` answers: one tuple, kept, as above."""
    return _output_frame(layout.begin_tag, layout.end_tag, layout.response_separator, count)


@lru_cache(maxsize=4096)
def _instruction_frame(numbering: str | None, separator: str, count: int) -> tuple[str, ...]:
    return (*[_number(numbering, position) for position in range(count)], *[separator] * (count - 1))


@lru_cache(maxsize=16384)
def _output_frame(begin_tag: str, end_tag: str, separator: str, count: int) -> tuple[str, ...]:
    return (*[begin_tag, end_tag] * count, *[separator] * (count - 1))


def output_parts(layout: Layout, responses: Sequence[str], response_ids: Sequence[int]) -> list[str]:
    """The output as pieces; `response_ids` are positions within the sample, in answer order."""
    parts: list[str] = []
    for rank, position in enumerate(response_ids):
        if rank:
            parts.append(layout.response_separator)
        parts.extend((layout.number(position), layout.begin_tag, responses[position], layout.end_tag))
    return parts

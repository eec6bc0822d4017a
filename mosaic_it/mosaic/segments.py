"""Exact token counts as sums of memoized segment counts, for GPT-2-style byte-level BPE.

GPT-2's pre-tokenizer regex ('s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+)
puts a whitespace character in a pre-token only as its first character or inside a run of
whitespace; it has no look-behind, and its one look-ahead (?!\\S) can only end a whitespace run.
So where a non-whitespace character is followed by whitespace, no pre-token crosses, each side
splits into the pre-tokens it has alone, and BPE never merges across pre-tokens: a text's token
count is the sum of its two sides' counts, in any context. Cutting a text at every such position
leaves segments (mostly a word with the whitespace before it) that recur across records and
samples, so each distinct segment is tokenized once and every later count is dictionary sums.

Which characters are whitespace depends on the regex engine's Unicode tables. A "clean" text holds
only printable characters (Python's definition, which excludes every Unicode separator and
format character) and tab, newline or carriage return; every engine reads such a text's
whitespace the same way. Other texts, and other tokenizers, are counted whole by the tokenizer.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

from mosaic_it.models.tokenizer import count_tokens, rust_tokenizer

# Segment patterns for clean texts, used with findall: each match is one segment, and the cuts
# between them are the cuts named. Matching segments is several times faster in Python's re than
# splitting at look-around cuts.
_SPACE, _NON_SPACE = "[ \t\n\r]", "[^ \t\n\r]"
# Cuts where a non-whitespace character is followed by whitespace: a word with the space before it.
COARSE = re.compile(f"{_SPACE}*{_NON_SPACE}+|{_SPACE}+")
# Also around a tab, newline or return that ends a whitespace run before a non-whitespace
# character: the run's look-ahead (?!\S) then leaves that character a pre-token of its own and the
# run before it another, as they are alone (no pre-token takes such a character as a prefix).
_NEWLINE_CUTS = f"{_SPACE}+(?=[\t\n\r]{_NON_SPACE})|[\t\n\r](?={_NON_SPACE})|"
# Also where ASCII letters, digits and other ASCII symbols meet (no pre-token holds two of these
# classes), except after an apostrophe ('s, 're ... are pre-tokens of their own) and next to a
# non-ASCII character (whose class depends on the engine's Unicode tables): a run of one class
# joins the next only through an apostrophe or a non-ASCII character.
_SYMBOL = "[!-&(-/:-@\\[-`{-~]"
_GLUE = "['\x80-\U0010ffff]"
_RUNS = f"(?:[A-Za-z]++|[0-9]++|{_SYMBOL}++)"
_BODY = f"(?:[A-Za-z]++[\x80-\U0010ffff]|[0-9]++[\x80-\U0010ffff]|{_SYMBOL}++{_GLUE}|{_GLUE})*+{_RUNS}?"
FINE = re.compile(  # all of the cuts above
    f"{_NEWLINE_CUTS}{_SPACE}*+(?={_NON_SPACE}){_BODY}|{_SPACE}+")
_ALLOWED_CONTROLS = str.maketrans("", "", "\t\n\r")
# The ASCII characters that are not printable, but tab, newline and return.
_ASCII_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Texts split and learnt together: bounds the segment lists held at once.
CUT_BATCH = 8192


def is_clean(text: str) -> bool:
    if text.isprintable():
        return True
    if text.isascii():  # a flag, read without a scan: search the text rather than copy it as below
        return _ASCII_CONTROLS.search(text) is None
    return text.translate(_ALLOWED_CONTROLS).isprintable()


def splits_are_exact(tokenizer: Any) -> bool:
    """Whether the cuts above are exact for this tokenizer: GPT-2 byte-level BPE (regex
    pre-tokenizer, no prefix space, no normalizer, no dropout), and no added token that holds
    whitespace or strips it (added tokens are matched before pre-tokenization)."""
    backend = rust_tokenizer(tokenizer)
    pre = getattr(backend, "pre_tokenizer", None)
    model = getattr(backend, "model", None)
    if not (type(pre).__name__ == "ByteLevel" and getattr(pre, "use_regex", False)
            and not getattr(pre, "add_prefix_space", True) and getattr(backend, "normalizer", 1) is None
            and type(model).__name__ == "BPE" and getattr(model, "dropout", 1) is None):
        return False
    added = backend.get_added_tokens_decoder().values()
    return all(not (t.lstrip or t.rstrip or t.single_word) and not any(c.isspace() for c in t.content)
               for t in added)


class SegmentCounts:
    """Token counts of clean texts from a memo of segment counts; misses are tokenized in one batch."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.memo: dict[str, int] = {"": 0}
        # Added tokens are matched before pre-tokenization, so FINE could cut one apart
        # ("<|im_end|>"): texts that hold one get the COARSE cuts only, which never cut one.
        self.added_tokens = [t.content for t in rust_tokenizer(tokenizer).get_added_tokens_decoder().values()]
        self.added = re.compile("|".join(map(re.escape, self.added_tokens))) if self.added_tokens else None

    def learn(self, segments: Iterable[str]) -> None:
        """Count the segments not yet known: each is cut finely and its parts not yet known are
        tokenized in one batch (fewer distinct strings than whole segments: " dog", " dog." and
        " dog," share " dog"). Counts do not depend on the order they are learnt in."""
        memo = self.memo
        new = list(set(segments).difference(memo))
        if not new:
            return
        parts = [self.split(s, FINE) for s in new]
        unknown = list(set(chain.from_iterable(parts)).difference(memo))
        if unknown:
            memo.update(zip(unknown, count_tokens(self.tokenizer, unknown).tolist()))
        memo.update(zip(new, (sum(map(memo.__getitem__, split)) for split in parts)))

    def split(self, text: str, pattern: re.Pattern = COARSE) -> list[str]:
        """A clean text's segments."""
        if pattern is not COARSE and self.added is not None and self.added.search(text):
            pattern = COARSE
        return pattern.findall(text)

    def count(self, text: str, pattern: re.Pattern = COARSE) -> int:
        """The exact count of one clean text."""
        segments = self.split(text, pattern)
        try:
            return sum(map(self.memo.__getitem__, segments))
        except KeyError:
            self.learn(segments)
            return sum(map(self.memo.__getitem__, segments))

    def cut_many(self, texts: Sequence[str]) -> Iterator[tuple[int, tuple[str, int] | None]]:
        """Per clean text, its exact count and its cut: the text with its interior segments taken
        out (first and last segment, still joined at a cut) and the interior's count; None when
        the text has no interior. Segments are learnt a batch of texts at a time."""
        for start in range(0, len(texts), CUT_BATCH):
            split = [COARSE.findall(text) for text in texts[start : start + CUT_BATCH]]
            self.learn(chain.from_iterable(split))
            yield from map(self.profile, split)

    def profile(self, segments: list[str]) -> tuple[int, tuple[str, int] | None]:
        get = self.memo.__getitem__
        total = sum(map(get, segments))
        if len(segments) < 3:
            return total, None
        return total, (segments[0] + segments[-1], total - get(segments[0]) - get(segments[-1]))

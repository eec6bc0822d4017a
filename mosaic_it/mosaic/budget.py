"""Token counting for the budget: every record is tokenized once, scaffolding once per distinct string.

Counting a sample as the sum of its pieces' counts is close but not exact, because a tokenizer may
merge or split across a join. Measured on Alpaca with the SmolLM2 tokenizer, the exact count lies
between (sum - 2 per join) and (sum + 0.5 per join). So a sample whose sum plus one token per join
is within budget fits for certain, a sum above budget is treated as not fitting, and only the thin
band between is tokenized exactly.

The exact count every sample records (`mosaic.tokens`) is made without tokenizing samples whole:
see `ExactSampleCounter`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from mosaic_it.models.tokenizer import count_tokens, rust_tokenizer

SAFE_EXCESS_PER_JOIN = 1
# A space between two non-space characters: GPT-2 byte-level pre-tokenization always cuts right
# before it, whatever comes before or after the piece (see ExactSampleCounter).
SAFE_CUT = re.compile(r"(?<=\S) (?=\S)")
# Pieces at least this long that are not record texts are cut on the fly (meta-instructions).
LONG_PIECE = 48


class TokenCounter:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        # The Rust tokenizer's encodings give lengths without building Python id lists.
        self._backend = rust_tokenizer(tokenizer)
        self.count = lru_cache(maxsize=65536)(self.exact)
        self.exact_checks = 0

    def exact(self, text: str) -> int:
        if not text:
            return 0
        if self._backend is not None:
            return len(self._backend.encode(text, add_special_tokens=False))
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_many(self, texts: Sequence[str]) -> np.ndarray:
        return count_tokens(self.tokenizer, texts)

    def sample_fits(self, sides: Sequence[list[str]], known: dict[str, int], budget: int) -> bool:
        """Whether a sample (its instruction and output, each as pieces) fits the budget.

        `known` maps the record texts in the pieces to their token counts, counted in bulk earlier.
        """
        estimate = joins = 0
        for parts in sides:
            present = [p for p in parts if p]
            estimate += sum(known[p] if p in known else self.count(p) for p in present)
            joins += max(0, len(present) - 1)
        if estimate > budget:
            return False
        if estimate + SAFE_EXCESS_PER_JOIN * joins <= budget:
            return True
        self.exact_checks += 1
        return self.sample_tokens(["".join(parts) for parts in sides]) <= budget

    def sample_tokens(self, texts: Sequence[str]) -> int:
        """Exact budget measure of a sample's instruction and output, tokenized apart as training encodes them."""
        return sum(self.exact(text) for text in texts)


def cuts_are_context_free(tokenizer: Any) -> bool:
    """Whether the tokenizer is GPT-2 style byte-level BPE (regex pre-tokenizer, no normalizer), for
    which a safe cut inside a text splits its token count exactly in any surrounding text."""
    backend = rust_tokenizer(tokenizer)
    pre = getattr(backend, "pre_tokenizer", None)
    model = getattr(backend, "model", None)
    return (type(pre).__name__ == "ByteLevel" and getattr(pre, "use_regex", False)
            and not getattr(pre, "add_prefix_space", True) and getattr(backend, "normalizer", 1) is None
            and type(model).__name__ == "BPE")


def _last_safe_cut(text: str) -> int:
    at = text.rfind(" ", 1, len(text) - 1)
    while text[at - 1].isspace() or text[at + 1].isspace():  # the text has a safe cut, so this ends
        at = text.rfind(" ", 1, at)
    return at


class ExactSampleCounter:
    """Exact token counts of rendered samples, at the cost of tokenizing only the joins.

    GPT-2's pre-tokenizer regex never lets a pre-token run across a space that sits between two
    non-space characters (every alternative takes a space only as its first character), and it has
    no look-behind; BPE merges never cross pre-tokens. So at such a cut a text's token count is
    the sum of its two sides' counts, in any context. Each record text is cut at its first and last
    safe space into head | interior | tail once; a sample's count is then the sum of its interiors
    plus the count of the sample with the interiors taken out, which is short and tokenized in bulk.
    For other tokenizers no text is cut and the whole sample is tokenized: still exact, slower.
    `verify` recounts every sample whole and checks that the two agree.
    """

    def __init__(self, counter: TokenCounter, texts: Sequence[str], counts: Sequence[int]) -> None:
        self.counter = counter
        self.cuts: dict[str, tuple[str, int, str]] = {}
        if not cuts_are_context_free(counter.tokenizer):
            return
        cut_texts, heads, tails, totals = [], [], [], []
        for text, total in zip(texts, counts):
            first = SAFE_CUT.search(text)
            if first is None or text in self.cuts:
                continue
            last = _last_safe_cut(text)
            cut_texts.append(text)
            heads.append(text[: first.start()])
            tails.append(text[last:])
            totals.append(int(total))
            self.cuts[text] = ("", 0, "")
        # First and last words recur a lot: count each distinct one once.
        distinct = list(dict.fromkeys(heads + tails))
        counts = dict(zip(distinct, counter.count_many(distinct).tolist()))
        for text, head, tail, total in zip(cut_texts, heads, tails, totals):
            self.cuts[text] = (head, total - counts[head] - counts[tail], tail)

    def reduce(self, pieces: Iterable[str]) -> tuple[str, int]:
        """One side of a sample with every cut text's interior taken out, and the interiors' count.

        Taking an interior out joins a head (ending in a non-space) to a tail (a space, then a
        non-space): a safe cut again, so the reduced string's count plus the interiors' is exact.
        """
        kept: list[str] = []
        inner = 0
        for piece in pieces:
            cut = self.cuts.get(piece)
            if cut is None and self.cuts and len(piece) >= LONG_PIECE:
                cut = self._cut_now(piece)
            if cut is None:
                kept.append(piece)
            else:
                kept.extend((cut[0], cut[2]))
                inner += cut[1]
        return "".join(kept), inner

    def _cut_now(self, text: str) -> tuple[str, int, str] | None:
        """Cut a long piece that is not a record (a meta-instruction) with cached single counts:
        its whole count is already cached by the budget check, its first and last words recur."""
        first = SAFE_CUT.search(text)
        if first is None:
            return None
        head, tail = text[: first.start()], text[_last_safe_cut(text):]
        count = self.counter.count
        return head, count(text) - count(head) - count(tail), tail

    def count_samples(self, samples: Sequence[Sequence[Sequence[str]]]) -> np.ndarray:
        """Exact token counts of many samples, each given as its sides (lists of pieces), tokenized
        apart as training encodes them."""
        reduced: list[str] = []
        owners: list[int] = []
        inner = [0] * len(samples)
        for index, sides in enumerate(samples):
            for pieces in sides:
                text, tokens = self.reduce(pieces)
                reduced.append(text)
                owners.append(index)
                inner[index] += tokens
        counted = np.bincount(owners, weights=self.counter.count_many(reduced), minlength=len(samples))
        return np.asarray(inner, dtype=np.int64) + counted.astype(np.int64)

"""Token counting for the budget, exact, without tokenizing samples.

A sample whose pieces' counts sum to more than the budget does not fit (even where the joined
sample would: kept so that outputs stay as they were); otherwise its exact count decides. Counting
a sample as the sum of its pieces is close but not exact, because a tokenizer may merge or split
across a join; measured on Alpaca with the SmolLM2 tokenizer, the exact count lies between (sum - 2
per join) and (sum + 0.5 per join). Earlier versions trusted that bound and took the exact count
only within one token per join of the budget (`exact_checks` still counts those samples); every
sample's exact count is now known anyway, so none over the budget can be kept.

Every sample's exact count (`mosaic.tokens`) is the sum of its texts' interiors plus the count of
the short string left when they are taken out, itself a sum of memoized segment counts
(`mosaic_it.mosaic.segments`) found from memos per piece and per join (`mosaic_it.mosaic.joined`),
so no sample is tokenized. The texts are counted up front in two processes where that is safe
(`mosaic_it.mosaic.forked`). Tokenizers and texts for which those cuts
are not exact are counted whole. `verify` recounts every sample whole and checks the two agree.
Where a provable bound (bound()) already shows that a sample fits, the budget check leaves its
exact count to whoever finishes the sample (`mosaic_it.mosaic.finisher`, often another process).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from typing import Any

import numpy as np

from mosaic_it.models.tokenizer import count_tokens, rust_tokenizer
from mosaic_it.mosaic.forked import in_two
from mosaic_it.mosaic.joined import JoinedCounts
from mosaic_it.mosaic.segments import COARSE, SegmentCounts, is_clean, splits_are_exact

SAFE_EXCESS_PER_JOIN = 1
# fit()'s answer for a sample proven to fit whose exact count is left to count() (another process).
UNCOUNTED = -1
# Counting fewer texts up front takes well under a second: not worth a second process.
FORK_AT_TEXTS = 20_000
# Texts a process claims at a time: both end within about one batch's work (0.1-0.2 s) of each other.
FORK_BATCH = 4096
Sides = Sequence[Sequence[str]]  # a sample's instruction and output, each as its pieces
Cut = tuple[str, int]  # the text with its interior taken out (short form), and the interior's count


class TokenCounter:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        # The Rust tokenizer's encodings give lengths without building Python id lists.
        self._backend = rust_tokenizer(tokenizer)
        self.segments = SegmentCounts(tokenizer) if splits_are_exact(tokenizer) else None
        self.count = lru_cache(maxsize=65536)(self._count)

    def exact(self, text: str) -> int:
        """The count of the whole text, straight from the tokenizer."""
        if not text:
            return 0
        if self._backend is not None:
            return len(self._backend.encode(text, add_special_tokens=False))
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _count(self, text: str) -> int:
        if self.segments is not None and is_clean(text):
            return self.segments.count(text)
        return self.exact(text)

    def count_many(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([total for total, _ in self.cut_many(texts)], dtype=np.int64)

    def cut_many(self, texts: Sequence[str]) -> list[tuple[int, Cut | None]]:
        """Each text's exact count and cut (None where it is not cut)."""
        if self.segments is None:
            return [(total, None) for total in count_tokens(self.tokenizer, texts).tolist()]
        clean = [is_clean(text) for text in texts]
        results: list[tuple[int, Cut | None]] = [(0, None)] * len(texts)
        at = [i for i, ok in enumerate(clean) if ok]
        # A list, not the generator itself: mypyc 2.4.1 miscompiles zip() over a compiled
        # generator here (a SystemError on the first call).
        for i, result in zip(at, list(self.segments.cut_many([texts[i] for i in at]))):
            results[i] = result
        others = [i for i, ok in enumerate(clean) if not ok]
        for i, total in zip(others, count_tokens(self.tokenizer, [texts[i] for i in others]).tolist()):
            results[i] = (total, None)
        return results

    def sample_tokens(self, texts: Sequence[str]) -> int:
        """Exact budget measure of a sample's instruction and output, tokenized apart as training
        encodes them, whole (what `verify` recounts)."""
        return sum(self.exact(text) for text in texts)


class SampleCounter:
    """Exact token counts and budget checks of samples given as their sides (lists of pieces)."""

    def __init__(self, counter: TokenCounter, texts: Sequence[str], fork_at: int | None = FORK_AT_TEXTS) -> None:
        """Counts `texts` up front; from `fork_at` texts on (None: never), half of them in a forked
        child on the second core (mosaic_it.mosaic.forked), with the same result."""
        self.counter = counter
        self.segments = counter.segments
        self.tokens: dict[str, int] = {"": 0}  # piece -> count; scaffolding joins on first use
        # A cut piece's short form: its first and last segment, whose count is the piece's minus
        # its interior's (they meet at a cut, so their counts add up).
        self.shorts: dict[str, str] = {}
        self.exact_checks = 0
        # piece -> its interior's count plus its short form's UTF-8 bytes (see bound()), as first used.
        self.bounds: dict[str, int] = {"": 0}
        self.joined = (JoinedCounts(self.segments, self.tokens, self.shorts, self._learn)
                       if self.segments is not None else None)
        if self.joined is None or fork_at is None or len(texts) < fork_at:
            self._learn_texts(texts)
            return
        # Last batch first: the outputs, which come after the instructions, take longest to count,
        # and short batches left to the end let the two processes finish closer together.
        batches = [texts[start : start + FORK_BATCH] for start in range(0, len(texts), FORK_BATCH)][::-1]
        sent = [0]  # in the child: how many of its segment counts it has sent

        def there(step: int) -> dict[str, Any]:
            self._learn_texts(batches[step])
            return self._state(batches[step], sent)

        in_two(len(batches), lambda step: self._learn_texts(batches[step]), there,
               lambda step, state: self._take_state(batches[step], state))

    def _learn_texts(self, texts: Sequence[str]) -> None:
        for text, (total, cut) in zip(texts, self.counter.cut_many(texts)):
            self._add(text, total, cut)
        if self.joined is not None:
            # Up front and in one batch, what the texts' short forms leave in a sample, and
            # their shares of bound() (while both processes count, not as packing starts).
            self.joined.summarize(dict.fromkeys(texts))
            self.bounds.update(zip(texts, self.bounds_of(texts)))

    def _state(self, batch: Sequence[str], sent: list[int]) -> dict[str, Any]:
        """What learning a batch of texts added, as JSON: their counts, cuts and summaries, and
        the segment counts not sent before (`sent[0]` of them were: the memo only grows)."""
        tokens, shorts, memo = self.tokens, self.shorts, self.segments.memo  # type: ignore[union-attr]
        new_segments = dict(islice(memo.items(), sent[0], None))
        sent[0] = len(memo)
        return {"segments": new_segments, "bounds": [self.bounds[t] for t in batch],
                "cuts": [[tokens[t], shorts[t], tokens[t] - tokens[shorts[t]]] if t in shorts else [tokens[t]]
                         for t in batch],
                "summaries": [self.joined.summaries[t] for t in dict.fromkeys(batch)]}  # type: ignore[union-attr]

    def _take_state(self, texts: Sequence[str], state: dict[str, Any]) -> None:
        # Whole dictionary updates where _add() goes piece by piece: every count is exact, so a
        # short form that is also a text, or known here already, gets the count it has.
        cuts = state["cuts"]
        if len(cuts) != len(texts):
            raise ValueError(f"{len(cuts)} counts for {len(texts)} texts")
        cut = [(text, row) for text, row in zip(texts, cuts) if len(row) == 3]
        self.tokens.update({row[1]: row[0] - row[2] for _, row in cut})
        self.tokens.update(zip(texts, map(itemgetter(0), cuts)))
        self.shorts.update({text: row[1] for text, row in cut})
        unique = dict.fromkeys(texts)
        if len(state["summaries"]) != len(unique):
            raise ValueError(f"{len(state['summaries'])} summaries for {len(unique)} texts")
        self.joined.summaries.update(  # type: ignore[union-attr]
            zip(unique, [None if summary is None else tuple(summary) for summary in state["summaries"]]))
        self.segments.memo.update(state["segments"])  # type: ignore[union-attr]
        self.bounds.update(zip(texts, state["bounds"]))

    def _add(self, piece: str, total: int, cut: Cut | None) -> None:
        self.tokens[piece] = total
        if cut is not None:
            self.shorts[piece] = cut[0]
            self.tokens.setdefault(cut[0], total - cut[1])

    def _learn(self, pieces: Sequence[str]) -> None:
        for piece in pieces:
            if piece not in self.tokens:
                if self.segments is not None and is_clean(piece):
                    segments = COARSE.findall(piece)
                    self.segments.learn(segments)
                    self._add(piece, *self.segments.profile(segments))
                else:
                    self.tokens[piece] = self.counter.exact(piece)

    def piece_sum(self, pieces: Sequence[str]) -> int:
        try:
            return sum(map(self.tokens.__getitem__, pieces))
        except KeyError:
            self._learn(pieces)
            return sum(map(self.tokens.__getitem__, pieces))

    def _side(self, pieces: Sequence[str]) -> int:
        """Exact count of one side: the cut pieces' interiors plus the rest, the side with short
        forms in place of cut pieces (mosaic_it.mosaic.joined). A first segment ends in
        non-whitespace and a last one starts with whitespace, so each short form is a cut inside
        the rest too, and the two counts add up exactly."""
        tokens = self.joined.count(pieces)  # type: ignore[union-attr]
        return self.counter.exact("".join(pieces)) if tokens is None else tokens

    def count(self, sides: Sequence[Sequence[str]]) -> int:
        """Exact count of a sample's sides, each tokenized apart as training encodes them (the
        pieces not yet known are learnt on the way)."""
        if self.segments is None:
            return sum(self.counter.exact("".join(pieces)) for pieces in sides)
        return sum(map(self._side, sides))

    def side_tokens(self, pieces: Sequence[str]) -> int:
        return self.count([pieces])

    def bound(self, pieces: Sequence[str]) -> int:
        """A side's count is at most its cut pieces' interiors plus its rest's UTF-8 bytes: a side
        counts as its interiors plus its rest (_side), and byte-level BPE gives every token at least
        one byte. Only for tokenizers whose cuts are exact; the pieces' counts must be known."""
        bounds = self.bounds
        try:
            return sum(map(bounds.__getitem__, pieces))
        except KeyError:  # a piece's first bound
            bounds.update(zip(pieces, self.bounds_of(pieces)))
            return sum(map(bounds.__getitem__, pieces))

    def bounds_of(self, pieces: Sequence[str]) -> list[int]:
        """Each piece's share of bound(): its interior's count plus its short form's UTF-8 bytes."""
        tokens, shorts = self.tokens, self.shorts
        return [tokens[piece] - tokens[short] + len(short.encode("utf-8", "surrogatepass"))
                for piece, short in zip(pieces, map(shorts.get, pieces, pieces))]

    def fit(self, sides: Sequence[list[str]], budget: int, deferrable: bool = False) -> int | None:
        """The sample's exact token count if it fits the budget, else None. With `deferrable`,
        UNCOUNTED where bound() alone proves it fits: count() gives the count later."""
        estimate = sum(self.piece_sum(parts) for parts in sides)
        joins = sum(max(0, len(parts) - parts.count("") - 1) for parts in sides)
        bound = (lambda: sum(map(self.bound, sides))) if deferrable else None
        return self.settle(estimate, joins, budget, bound, lambda: sides)[0]

    def settle(self, estimate: int, joins: int, budget: int, bound: Callable[[], int] | None,
               sides: Callable[[], Sides]) -> tuple[int | None, Sides | None]:
        """fit()'s answer from a sample's piece sum (piece_sum() over its sides) and its number of
        joins between non-empty pieces, which a caller may know without rendering the sample. The
        bound() sum is asked for only where deferring is allowed, the rendered sides only where
        the exact count is needed (their pieces' counts known); they come back where rendered."""
        if estimate > budget:
            return None, None
        if estimate + SAFE_EXCESS_PER_JOIN * joins > budget:
            self.exact_checks += 1
        if bound is not None and self.segments is not None and bound() <= budget:
            return UNCOUNTED, None
        rendered = sides()
        tokens = self.count(rendered)
        return (tokens if tokens <= budget else None), rendered

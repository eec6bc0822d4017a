"""The exact count of a sample's side from memos per piece and per join, without cutting the
side's rest (a regex pass over every sample's rest cost more than the rest of its count).

A side's count is its cut pieces' interiors plus the FINE count of its rest (the side with each cut
piece's short form in its place; mosaic_it.mosaic.budget). FINE decides a cut between text[p-1]
and text[p] from those two characters and from whether text[p+1] exists and is not whitespace
(tests/test_budget_segments.py checks the pattern against that rule position by position), and a
missing text[p+1] never makes a cut that a present one would not. Hence, appending a piece K:
- the text's segments stay, except its last one, L: then come the segments of L + K alone;
- those are the segments of L + H alone, then K's own segments after H, where H is K up to the
  end of its first segment of two or more characters (all of K if none is). From K's second
  character on, every cut is decided as in K alone; the last position of H lies inside a segment
  of K, so neither has a cut there, and nothing after H can change a cut before it.
So each piece is summarized once (H, the count of everything between H and its last segment,
interior included, and that last segment), each join L + H is cut once, and a side's count is
dictionary lookups.

A rest that holds an added token is cut at whitespace only (COARSE). One that does either holds
it inside a short form or has a short form that ends with the start of one; a summary says so, and
only then is the rest joined and searched.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence

from mosaic_it.mosaic.segments import FINE, SegmentCounts, is_clean

# A piece's head, the count of everything else but its last segment (its interior included), its
# last segment (None when the head is the whole short form), and whether an added token may be
# in the rest there.
Summary = tuple[str, int, str | None, bool]


class JoinedCounts:
    def __init__(self, segments: SegmentCounts, tokens: dict[str, int], shorts: dict[str, str],
                 learn: Callable[[Sequence[str]], None] = lambda pieces: None) -> None:
        """`learn` counts (and cuts) pieces not yet known, filling `tokens` and `shorts`."""
        self.segments = segments
        self.tokens, self.shorts = tokens, shorts  # the sample counter's, filled as pieces are learnt
        self.learn = learn
        self.summaries: dict[str, Summary | None] = {}  # None: the short form is not clean
        # A join L + H: the count of all its segments, of all but the last one, and the last one.
        self.joins: dict[str, tuple[int, int, str]] = {}
        # An added token, or a proper start of one at the end.
        added = segments.added_tokens
        starts = sorted({t[:i] for t in added for i in range(1, len(t))})
        self.risk = re.compile("|".join(map(re.escape, added)) + (
            f"|(?:{'|'.join(map(re.escape, starts))})\\Z" if starts else "")) if added else None

    def count(self, pieces: Sequence[str], searched: bool = False) -> int | None:
        """The exact count of "".join(pieces); None if its rest is not clean. A piece seen for the
        first time is learnt. `searched`: the rest is known to hold no added token."""
        summaries, joins = self.summaries, self.joins
        total, last = 0, ""
        for piece in pieces:
            if not piece:
                continue
            try:
                summary = summaries[piece]
            except KeyError:
                self.learn([piece])
                summary = self.summarize([piece])[0]
            if summary is None:
                return None
            head, between, final, risky = summary
            if risky and not searched:
                return self._search(pieces)
            join = last + head
            try:
                whole, but_last, join_last = joins[join]
            except KeyError:
                whole, but_last, join_last = self._cut(join)
            if final is None:
                total += but_last + between
                last = join_last
            else:
                total += whole + between
                last = final
        return total + self.segments.memo[last]

    def summarize(self, pieces: Collection[str]) -> list[Summary | None]:
        """Summaries of pieces whose counts are known, their segments learnt in one batch."""
        shorts, memo, risk = self.shorts, self.segments.memo, self.risk
        kept = [shorts.get(piece, piece) for piece in pieces]
        split = [FINE.findall(short) if is_clean(short) else None for short in kept]
        # The first segment after a space is learnt too: a numbering like "1. " ends in one.
        self.segments.learn([s for parts in split if parts for s in (*parts, " " + parts[0])])
        results: list[Summary | None] = []
        for piece, short, parts in zip(pieces, kept, split):
            summary: Summary | None
            if parts is None:
                summary = None
            else:
                interior = self.tokens[piece] - self.tokens[short] if short is not piece else 0
                risky = bool(risk and risk.search(short))
                end = next((i for i, part in enumerate(parts) if len(part) > 1), len(parts) - 1) + 1
                if end == len(parts):
                    summary = (short, interior, None, risky)
                else:
                    between = interior + sum(map(memo.__getitem__, parts[end:-1]))
                    summary = ("".join(parts[:end]), between, parts[-1], risky)
            self.summaries[piece] = summary
            results.append(summary)
        return results

    def _cut(self, join: str) -> tuple[int, int, str]:
        parts = FINE.findall(join)
        get = self.segments.memo.__getitem__
        try:
            counts = [*map(get, parts)]
        except KeyError:
            self.segments.learn(parts)
            counts = [*map(get, parts)]
        whole = sum(counts)
        result = self.joins[join] = (whole, whole - counts[-1], parts[-1])
        return result

    def _search(self, pieces: Sequence[str]) -> int | None:
        self.learn(pieces)
        rest = "".join(map(self.shorts.get, pieces, pieces))
        if not self.segments.added.search(rest):  # type: ignore[union-attr]
            return self.count(pieces, searched=True)
        if not is_clean(rest):
            return None
        interiors = sum(self.tokens[piece] - self.tokens[self.shorts.get(piece, piece)] for piece in pieces)
        return interiors + self.segments.count(rest, FINE)  # COARSE cuts, as it holds an added token

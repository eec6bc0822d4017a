"""The budget check of a packed sample from its records' counts, without rendering the sample.

The check (budget.SampleCounter.settle) wants the sum of the counts of the sample's pieces, its
number of joins and, where the count may be left to the finisher, the sum of its pieces' bounds.
Each is a sum over the pieces, which needs the pieces but not their order: the texts and responses
of its records, whose counts and bounds are kept here per record, and the scaffold that the layout
adds (layout.instruction_scaffold and output_scaffold). Most of the scaffold is a frame that many
samples share (layout.instruction_frame and output_frame), whose sums are kept per frame. A sample
is rendered only where its exact count is needed; the others are rendered once, by whoever
finishes them.
"""
from __future__ import annotations

from collections.abc import Sequence

from mosaic_it.mosaic.budget import SampleCounter, Sides
from mosaic_it.mosaic.engine import Plan, render
from mosaic_it.mosaic.layout import instruction_frame, instruction_tail, output_frame, output_numbers


class RecordSums:
    def __init__(self, exact: SampleCounter, texts: Sequence[str], responses: Sequence[str]) -> None:
        """`texts` and `responses` are the records' instruction texts and outputs, counted by `exact`."""
        self.exact, self.responses = exact, responses
        tokens = exact.tokens
        self.text_tokens = [tokens[text] for text in texts]
        self.response_tokens = [tokens[response] for response in responses]
        # Each record's shares of bound(), known where cuts are exact (else bound() is never asked
        # for). Taken here, not on first use: after the finisher's fork, each page these lookups
        # touch is copied first (0.065 s on the full Alpaca file, with the second core waiting).
        self._bounds: tuple[list[int], list[int]] | None = None
        if exact.segments is not None:
            known = exact.bounds
            self._bounds = ([known[t] for t in texts], [known[r] for r in responses])
        self._frames: dict[tuple[str, ...], tuple[int, int]] = {}  # frame -> its count, its non-empty pieces
        self._frame_bounds: dict[tuple[str, ...], int] = {}

    def fit(self, ids: Sequence[int], texts: Sequence[str], plan: Plan, budget: int,
            deferrable: bool) -> tuple[int | None, Sides | None]:
        """SampleCounter.fit() of the sample `plan` makes of records `ids` (whose texts are
        `texts`), and its rendered sides where the check rendered them."""
        exact = self.exact
        layout, positions = plan.layout, plan.response_positions
        meta = plan.meta_pieces
        if exact.segments is None and len(meta) > 1:  # counted whole, its sentences' counts need not add up
            meta = (plan.meta_instruction,)
        answered = [ids[position] for position in positions]
        # The scaffold: two shared frames, and the pieces of this sample's own (its meta-instruction's, its numbers).
        frames = (instruction_frame(layout, len(ids)), output_frame(layout, len(answered)))
        (instruction_frame_tokens, instruction_frame_pieces), (output_frame_tokens, output_frame_pieces) = map(self._frame, frames)
        tail, numbers = instruction_tail(layout, meta), output_numbers(layout, positions)
        text_tokens, response_tokens = self.text_tokens, self.response_tokens
        instruction_counts = [text_tokens[i] for i in ids]
        output_counts = [response_tokens[i] for i in answered]
        estimate = (sum(instruction_counts) + sum(output_counts) + instruction_frame_tokens + output_frame_tokens
                    + exact.piece_sum(tail) + exact.piece_sum(numbers))
        # A piece is empty exactly where its count is 0 (every character is at least one token).
        # The meta-instruction's sentences are joined at cuts: they count as one piece here.
        joins = (max(0, len(ids) - instruction_counts.count(0) + instruction_frame_pieces + len(tail) - tail.count("")
                     - 1 - max(0, len(meta) - 1))
                 + max(0, len(answered) - output_counts.count(0) + len(numbers) - numbers.count("") + output_frame_pieces - 1))

        def bound() -> int:
            text_bounds, response_bounds = self.bounds()
            return (sum([text_bounds[i] for i in ids]) + sum([response_bounds[i] for i in answered])
                    + sum(map(self._frame_bound, frames)) + exact.bound(tail) + exact.bound(numbers))

        def sides() -> Sides:
            return render(plan, texts, [self.responses[i] for i in ids])

        return exact.settle(estimate, joins, budget, bound if deferrable else None, sides)

    def _frame(self, frame: tuple[str, ...]) -> tuple[int, int]:
        try:
            return self._frames[frame]
        except KeyError:
            sums = self._frames[frame] = (self.exact.piece_sum(frame), len(frame) - frame.count(""))
            return sums

    def _frame_bound(self, frame: tuple[str, ...]) -> int:
        try:
            return self._frame_bounds[frame]
        except KeyError:  # its pieces' counts are known: _frame() learnt them
            bound = self._frame_bounds[frame] = self.exact.bound(frame)
            return bound

    def bounds(self) -> tuple[list[int], list[int]]:
        if self._bounds is None:
            raise ValueError("bound() needs a tokenizer whose cuts are exact")
        return self._bounds

"""The budget check of a packed sample from its records' counts, without rendering the sample.

The check (budget.SampleCounter.settle) wants the sum of the counts of the sample's pieces, its
number of joins and, where the count may be left to the finisher, the sum of its pieces' bounds.
Each is a sum over the pieces, which needs the pieces but not their order: the texts and responses
of its records, whose counts and bounds are kept here per record, and the scaffold that the layout
adds (layout.instruction_scaffold and output_scaffold). A sample is rendered only where its exact
count is needed; the others are rendered once, by whoever finishes them.
"""
from __future__ import annotations

from collections.abc import Sequence

from mosaic_it.mosaic.budget import SampleCounter, Sides
from mosaic_it.mosaic.engine import Plan, render
from mosaic_it.mosaic.layout import instruction_scaffold, output_scaffold


class RecordSums:
    def __init__(self, exact: SampleCounter, texts: Sequence[str], responses: Sequence[str]) -> None:
        """`texts` and `responses` are the records' instruction texts and outputs, counted by `exact`."""
        self.exact, self.texts, self.responses = exact, texts, responses
        tokens = exact.tokens
        self.text_tokens = [tokens[text] for text in texts]
        self.response_tokens = [tokens[response] for response in responses]
        # Each record's shares of bound(), known where cuts are exact (else bound() is never asked
        # for). Taken here, not on first use: after the finisher's fork, each page these lookups
        # touch is copied first (0.065 s on the full Alpaca file, with the second core waiting).
        known = exact.bounds if exact.segments is not None else None
        self._bounds = None if known is None else ([known[t] for t in texts], [known[r] for r in responses])

    def fit(self, ids: Sequence[int], texts: Sequence[str], plan: Plan, budget: int,
            deferrable: bool) -> tuple[int | None, Sides | None]:
        """SampleCounter.fit() of the sample `plan` makes of records `ids` (whose texts are
        `texts`), and its rendered sides where the check rendered them."""
        exact = self.exact
        meta = plan.meta_pieces
        if exact.segments is None and len(meta) > 1:  # counted whole, its sentences' counts need not add up
            meta = (plan.meta_instruction,)
        instruction = instruction_scaffold(plan.layout, len(ids), meta)
        output = output_scaffold(plan.layout, plan.response_positions)
        answered = [ids[position] for position in plan.response_positions]
        text_tokens, response_tokens = self.text_tokens, self.response_tokens
        instruction_counts = [text_tokens[i] for i in ids]
        output_counts = [response_tokens[i] for i in answered]
        estimate = (sum(instruction_counts) + sum(output_counts)
                    + exact.piece_sum(instruction) + exact.piece_sum(output))
        # A piece is empty exactly where its count is 0 (every character is at least one token).
        # The meta-instruction's sentences are joined at cuts: they count as one piece here.
        joins = (max(0, len(ids) - instruction_counts.count(0) + len(instruction) - instruction.count("") - 1
                     - max(0, len(meta) - 1))
                 + max(0, len(answered) - output_counts.count(0) + len(output) - output.count("") - 1))

        def bound() -> int:
            text_bounds, response_bounds = self.bounds()
            return (sum([text_bounds[i] for i in ids]) + sum([response_bounds[i] for i in answered])
                    + exact.bound(instruction) + exact.bound(output))

        def sides() -> Sides:
            return render(plan, texts, [self.responses[i] for i in ids])

        return exact.settle(estimate, joins, budget, bound if deferrable else None, sides)

    def bounds(self) -> tuple[list[int], list[int]]:
        if self._bounds is None:
            raise ValueError("bound() needs a tokenizer whose cuts are exact")
        return self._bounds

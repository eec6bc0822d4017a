"""The packer's budget check without rendering (mosaic_it.mosaic.record_sums) answers what
SampleCounter.fit() answers on the rendered sample, for every layout, rule and budget."""
from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest

from mosaic_it.mosaic.budget import UNCOUNTED, SampleCounter, TokenCounter
from mosaic_it.mosaic.engine import plan_sample, render
from mosaic_it.mosaic.layout import (draw_layout, instruction_frame, instruction_parts, instruction_scaffold, output_frame,
                                     output_parts, output_scaffold)
from mosaic_it.mosaic.record_sums import RecordSums

from test_budget_segments import ADVERSARIAL, _variants


def test_the_scaffolds_are_the_pieces_the_layout_adds():
    rng = random.Random(0)
    for _ in range(300):
        layout = draw_layout(rng)
        count = rng.randint(1, 10)
        texts = [f"text {i}" for i in range(count)]
        positions = rng.sample(range(count), rng.randint(1, count))
        meta = rng.choice([(), ("Answer them all.",), ("Answer them all.", " Skip the second.")])
        instruction = Counter(instruction_parts(layout, texts, meta))
        instruction.subtract(texts)
        assert +instruction == +Counter(instruction_scaffold(layout, count, meta))
        output = Counter(output_parts(layout, texts, positions))
        output.subtract(texts[p] for p in positions)
        assert +output == +Counter(output_scaffold(layout, positions))
        assert instruction.total() == len(instruction_scaffold(layout, count, meta))
        assert output.total() == len(output_scaffold(layout, positions))


def test_a_frame_is_one_kept_tuple_for_every_layout_that_shares_it():
    layout = draw_layout(random.Random(3))
    other = dataclasses.replace(layout, meta_position="after" if layout.meta_position == "before" else "before",
                                meta_separator=layout.meta_separator + "\n")
    assert instruction_frame(layout, 4) is instruction_frame(other, 4)  # meta fields are not part of it
    assert output_frame(layout, 3) is output_frame(dataclasses.replace(layout, numbering="({i}) "), 3)
    assert instruction_frame(layout, 4) is not instruction_frame(layout, 5)


@pytest.mark.parametrize("variant", [None, "normalized"])  # cut exactly, and counted whole
def test_the_check_without_rendering_is_fit_on_the_rendered_sample(embedded_tokenizer, variant):
    # Empty texts and responses too: they change the number of joins, not the sums.
    texts = [*ADVERSARIAL, "", "Name three colours.", "Sort these words:\nb a c"]
    responses = [*reversed(ADVERSARIAL), "Red, green and blue.", "", "a b c"]
    counter = TokenCounter(_variants(embedded_tokenizer)[variant] if variant else embedded_tokenizer)
    plain, summed = SampleCounter(counter, texts + responses), SampleCounter(counter, texts + responses)
    sums = RecordSums(summed, texts, responses)
    rng = random.Random(2)
    rendered = left = 0
    for _ in range(400):
        ids = rng.sample(range(len(texts)), rng.randint(1, 8))
        chosen = [texts[i] for i in ids]
        plan = plan_sample(chosen, random.Random(rng.random()), rng.choice(["format", "order", "mask"]),
                           layout=draw_layout(rng))
        whole = plan
        if variant is None:  # the sentences' counts add up to the meta-instruction's: the check is as it was
            assert plain.piece_sum(plan.meta_pieces) == plain.piece_sum([plan.meta_instruction])
        elif plan.meta_pieces:  # counted whole, so RecordSums sums it whole
            whole = dataclasses.replace(plan, meta_pieces=(plan.meta_instruction,))
        sides = render(whole, chosen, [responses[i] for i in ids])
        tokens = plain.count(sides)
        estimate = sum(map(plain.piece_sum, sides))
        bound = sum(map(plain.bound, sides))
        for budget in (tokens - 1, tokens, estimate - 1, estimate, bound - 1, bound):
            for deferrable in (False, True):
                expected = plain.fit(sides, budget, deferrable)
                fit, their_sides = sums.fit(ids, chosen, plan, budget, deferrable)
                assert fit == expected
                assert plain.exact_checks == summed.exact_checks
                if their_sides is not None:
                    rendered += 1
                    assert "".join(their_sides[0]) == "".join(sides[0])
                    assert list(their_sides[1]) == list(sides[1])
                else:
                    assert fit in (None, UNCOUNTED)
                left += fit == UNCOUNTED
    assert rendered > 500 and plain.exact_checks > 100
    assert left > 300 if variant is None else left == 0  # no bound without exact cuts

"""Scoring of mosaic-following generations on hand-made generations."""
from __future__ import annotations

import random

import pytest

from mosaic_it.evaluate.mosaic_score import (
    kendall_tau,
    match_segments,
    score_generation,
    spearman_rho,
    split_segments,
    Segment,
)

RECORDS = {
    10: "The capital of France is Paris, a city on the Seine.",
    11: "Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.",
    12: "A haiku has three lines with five, seven and five syllables.",
}
FMT = {"numbering": "[{i}] ", "begin_tag": "<BEGIN>", "end_tag": "<END>",
       "instruction_separator": "\n", "response_separator": "\n\n", "meta_position": "before"}


def sample(response_ids, strategy="order", fmt=FMT):
    return {"mosaic": {"source_ids": [10, 11, 12], "response_ids": response_ids,
                       "strategy": strategy, "rule": None, "format": fmt}}


def render(ids, fmt=FMT, numbers=None):
    positions = {10: 1, 11: 2, 12: 3}
    parts = []
    for k, rid in enumerate(ids):
        number = fmt["numbering"].format(i=(numbers or [positions[r] for r in ids])[k]) if fmt["numbering"] else ""
        parts.append(number + fmt["begin_tag"] + RECORDS[rid] + fmt["end_tag"])
    return fmt["response_separator"].join(parts)


def test_perfect_generation_scores_full_marks():
    s = sample([12, 11, 10])
    scores = score_generation(s, render([12, 11, 10]), RECORDS)
    assert scores["format"] is True and scores["count"] is True
    assert scores["kendall_tau"] == 1.0 and scores["spearman"] == 1.0 and scores["order_exact"]
    assert scores["mask"] is None


def test_reversed_order_scores_minus_one():
    scores = score_generation(sample([10, 11, 12]), render([12, 11, 10]), RECORDS)
    assert scores["count"] is True
    assert scores["kendall_tau"] == -1.0 and scores["spearman"] == -1.0
    assert scores["order_exact"] is False
    # The numbers announce 3, 2, 1 where 1, 2, 3 was asked for.
    assert scores["format"] is False


def test_one_swap_gives_partial_rank_correlation():
    assert kendall_tau([1, 2, 3], [2, 1, 3]) == pytest.approx(1 / 3)
    assert spearman_rho([1, 2, 3], [2, 1, 3]) == pytest.approx(0.5)
    assert kendall_tau([1, 2, 3], [1, None, None]) is None


def test_missing_end_tag_fails_format_and_count():
    generation = render([10, 11, 12]).replace("<END>", "", 1)
    scores = score_generation(sample([10, 11, 12]), generation, RECORDS)
    assert scores["format"] is False
    assert scores["count"] is False


def test_extra_answer_fails_count():
    generation = render([10, 11, 12]) + "\n\n[4] <BEGIN>Something else entirely.<END>"
    scores = score_generation(sample([10, 11, 12]), generation, RECORDS)
    assert scores["count"] is False and scores["format"] is False
    assert scores["kendall_tau"] == 1.0


def test_masked_answer_present_fails_mask():
    s = sample([10, 12], strategy="mask")
    good = score_generation(s, render([10, 12]), RECORDS)
    assert good["mask"] is True and good["count"] is True and good["format"] is True
    leaked = score_generation(s, render([10, 11, 12]), RECORDS)
    assert leaked["mask"] is False and leaked["count"] is False
    assert score_generation(s, "", RECORDS)["mask"] is False  # silence is not compliance


def test_numbering_only_ignores_inner_lists():
    fmt = dict(FMT, numbering="{i}. ", begin_tag="", end_tag="")
    generation = "1. " + RECORDS[10] + "\n1. a detail\n2. another\n\n2. " + RECORDS[11] + "\n\n3. " + RECORDS[12]
    segments = split_segments(generation, fmt)
    assert [s.number for s in segments] == [1, 2, 3]
    assert score_generation(sample([10, 11, 12], fmt=fmt), generation, RECORDS)["format"] is True


def test_plain_format_has_no_format_score_and_splits_on_blank_lines():
    fmt = dict(FMT, numbering=None, begin_tag="", end_tag="")
    scores = score_generation(sample([10, 11, 12], "format", fmt), render([10, 11, 12], fmt), RECORDS)
    assert scores["format"] is None and scores["count"] is True and scores["order_exact"]


def test_matching_is_one_to_one_and_thresholded():
    refs = {1: "red apple", 2: "green pear"}
    assert match_segments([Segment(None, "red apple"), Segment(None, "red apple pie")], refs) == [1, None]
    assert match_segments([Segment(None, "zebra")], refs) == [None]


@pytest.mark.parametrize("strategy", ["format", "order", "mask"])
def test_engine_samples_score_perfectly_on_their_own_output(strategy):
    from mosaic_it.mosaic.engine import make_sample

    records = [{"instruction": f"Describe item {k}", "input": "", "output": text}
               for k, text in enumerate(RECORDS.values())]
    rng = random.Random(3)
    for _ in range(30):
        s = make_sample(records, [10, 11, 12], rng, strategy)
        scores = score_generation(s, s["output"], RECORDS)
        assert scores["count"] and scores["order_exact"] and scores["format"] in (True, None), s
        assert scores["mask"] in (True, None)

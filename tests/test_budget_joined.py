"""A side's count from memos per piece and per join (mosaic_it.mosaic.joined) equals the FINE
count of its rest segment by segment, and the tokenizer's count of the whole side."""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_it.mosaic.budget import SampleCounter, TokenCounter
from mosaic_it.mosaic.joined import JoinedCounts
from mosaic_it.mosaic.segments import FINE, SegmentCounts

# Characters where FINE's cuts depend on their neighbours: whitespace runs, newlines before words,
# letters, digits and symbols meeting, apostrophes, non-ASCII.
ALPHABET = list(" \t\n\raZ09'.,<>|_-é中😀") + ["\n\n", "  ", "ab", "12", "..", " x", "\n1. ", "<END>"]
pieces_strategy = st.lists(st.lists(st.sampled_from(ALPHABET), max_size=6).map("".join), min_size=1, max_size=7)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=pieces_strategy, seed=st.integers(0, 2**32 - 1))
def test_the_joined_segments_are_the_segments_of_the_joined_text(embedded_tokenizer, pieces, seed):
    # Every substring weighs a random 40-bit number: equal sums mean equal segments.
    joined = "".join(pieces)
    segments = SegmentCounts(embedded_tokenizer)
    rng = random.Random(seed)
    segments.memo.update({joined[a:b]: rng.getrandbits(40)
                          for a in range(len(joined)) for b in range(a + 1, len(joined) + 1)})
    counts = JoinedCounts(segments, {}, {})
    assert counts.count(pieces) == sum(segments.memo[s] for s in FINE.findall(joined))
    assert counts.count(pieces[::-1]) == sum(segments.memo[s] for s in FINE.findall("".join(pieces[::-1])))


def test_a_summary_is_the_head_to_its_first_longer_segment_then_the_rest_then_the_last(embedded_tokenizer):
    counts = JoinedCounts(SegmentCounts(embedded_tokenizer), {}, {})
    memo = counts.segments.memo
    assert counts.summarize(["\n2. Give me a dog.", "(3)\n", "Sure"]) == [
        ("\n2. Give", sum(memo[s] for s in (" me", " a", " dog")), ".", False), ("(3)\n", 0, None, False),
        ("Sure", 0, None, False)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.lists(st.sampled_from(ALPHABET + ["word", " words here", "<|im_end|>", "\u00a0"]),
                               min_size=1, max_size=8).map("".join), min_size=1, max_size=5),
       scaffold=st.lists(st.sampled_from(["", " ", "\n", "\n\n", "1. ", "(2)\n", "<B>", "**E**", "'", "x"]),
                         min_size=1, max_size=5))
def test_sides_of_cut_records_and_scaffolding_count_exactly(embedded_tokenizer, texts, scaffold):
    counter = TokenCounter(embedded_tokenizer)
    exact = SampleCounter(counter, texts)  # the texts are cut; added tokens and unclean ones fall back
    side = [piece for pair in zip(scaffold * len(texts), texts) for piece in pair]
    assert exact.side_tokens(side) == counter.exact("".join(side))
    assert exact.side_tokens(side[::-1]) == counter.exact("".join(side[::-1]))


def test_a_cut_piece_whose_short_form_is_all_head_keeps_its_interior(embedded_tokenizer):
    counter = TokenCounter(embedded_tokenizer)
    exact = SampleCounter(counter, ["a b c\nx"])
    assert exact.shorts["a b c\nx"] == "a\nx" and exact.joined.summaries["a b c\nx"] == ("a\nx", 2, None, False)
    assert exact.side_tokens(["1. ", "a b c\nx", "\n"]) == counter.exact("1. a b c\nx\n")


def test_an_added_token_across_pieces_is_found_and_never_cut(embedded_tokenizer):
    counter = TokenCounter(embedded_tokenizer)
    exact = SampleCounter(counter, ["x <|im", "end|> y", "two words here"])
    for side in (["x <|im", "_", "end|> y"], ["1. ", "x <|im", "_", "end|> y", "\n", "two words here"],
                 ["<|endof", "text|>", "two words here"], ["a", "<|im_start|>", "b"]):
        assert exact.side_tokens(side) == counter.exact("".join(side)), side
    assert exact.joined.summaries["x <|im"][3] and not exact.joined.summaries["two words here"][3]


def test_pieces_never_seen_are_learnt_as_their_side_is_counted(embedded_tokenizer):
    counter = TokenCounter(embedded_tokenizer)
    long_text = "a long text with many words in it"
    side = ["Answer: ", long_text, "\n", "an added <|im_end|> token", "\n", "non\u00a0breaking space", "1. x"]
    for pieces in (side[:3], side[3:5], side[3:], side, side[::-1]):
        exact = SampleCounter(counter, [])  # knows no piece yet
        assert exact.side_tokens(pieces) == counter.exact("".join(pieces)), pieces
        assert exact.side_tokens(pieces) == counter.exact("".join(pieces)), pieces  # known now
    exact = SampleCounter(counter, [])
    exact.side_tokens(side[:5])
    assert set(side[:5]) <= set(exact.tokens) and exact.shorts[long_text] == "a it"

"""Each order and mask rule, on hand-made instructions whose right answer is known."""
from __future__ import annotations

import random

import pytest

from mosaic_it.mosaic.engine import plan_sample
from mosaic_it.mosaic.layout import Layout, draw_layout
from mosaic_it.mosaic.rules import MASK_RULES, ORDER_RULES, applicable

TEXTS = [
    "write a haiku about rain",          # w, 5 words, 24 chars
    "Bake bread",                        # b, 2 words, 10 chars
    "explain gravity to a child please", # e, 6 words, 33 chars
    "Add 2 and 3",                       # a, 4 words, 11 chars
    "Zip the files in this folder now",  # z, 7 words, 32 chars
]
NUMBERED = Layout("{i}. ", "", "", "\n", "\n\n", "before", "\n")
PLAIN = Layout(None, "", "", "\n", "\n\n", "after", "\n")


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("REVERSE", [4, 3, 2, 1, 0]),
        ("ALPHA", [3, 1, 2, 0, 4]),           # a b e w z, case-insensitive
        ("REVERSE_ALPHA", [4, 0, 2, 1, 3]),
        ("LENGTH_WORD", [1, 3, 0, 2, 4]),
        ("REVERSE_LENGTH_WORD", [4, 2, 0, 3, 1]),
        ("LENGTH_CHAR", [1, 3, 0, 4, 2]),
        ("REVERSE_LENGTH_CHAR", [2, 4, 0, 3, 1]),
        ("ODD_EVEN", [0, 2, 4, 1, 3]),
        ("EVEN_ODD", [1, 3, 0, 2, 4]),
    ],
)
def test_order_rule_arranges_as_its_name_says(rule, expected):
    assert ORDER_RULES[rule].arrange(TEXTS, {}) == expected


def test_fixed_order_follows_the_announced_sequence():
    assert ORDER_RULES["FIX"].arrange(TEXTS, {"sequence": [3, 1, 5, 2, 4]}) == [2, 0, 4, 1, 3]
    args = ORDER_RULES["FIX"].choose(TEXTS, random.Random(0))
    assert sorted(args["sequence"]) == [1, 2, 3, 4, 5] and args["sequence"] != [1, 2, 3, 4, 5]


def test_alpha_uses_the_first_letter_only_and_ignores_case():
    # The reference sorted whole strings case-sensitively, putting "Zebra" before "apple".
    texts = ["Zebra facts", "apple pie", "  \"quote\" first", "Apple tart"]
    assert ORDER_RULES["ALPHA"].arrange(texts, {}) == [1, 3, 2, 0]
    assert ORDER_RULES["ALPHA"].has_ties(texts)


def test_alpha_does_not_apply_without_a_latin_first_letter():
    assert ORDER_RULES["ALPHA"].choose(["123", "abc"], random.Random(0)) is None
    assert ORDER_RULES["ALPHA"].choose(["日本について", "abc"], random.Random(0)) is None


def test_ties_keep_given_order_and_are_announced():
    texts = ["one two", "three four", "five"]
    assert ORDER_RULES["LENGTH_WORD"].arrange(texts, {}) == [2, 0, 1]
    assert ORDER_RULES["REVERSE_LENGTH_WORD"].arrange(texts, {}) == [0, 1, 2]
    plan = plan_sample(texts, random.Random(3), "order", "LENGTH_WORD", layout=NUMBERED)
    assert "tie" in plan.meta_instruction.lower()


@pytest.mark.parametrize(
    "rule, args, kept",
    [
        ("FIX", {"numbers": [2, 5]}, [0, 2, 3]),
        ("WORD_LONG", {"k": 2}, [0, 1, 3]),
        ("WORD_SHORT", {"k": 2}, [0, 2, 4]),
        ("EVEN", {}, [0, 2, 4]),
        ("ODD", {}, [1, 3]),
    ],
)
def test_mask_rule_keeps_the_right_answers(rule, args, kept):
    assert MASK_RULES[rule].arrange(TEXTS, args) == kept


def test_odd_mask_only_for_an_even_number_of_instructions():
    # Hiding 1, 3, 5 of five would hide more than half.
    assert MASK_RULES["ODD"].choose(TEXTS, random.Random(0)) is None
    assert MASK_RULES["ODD"].choose(TEXTS[:4], random.Random(0)) == {}


def test_word_masks_never_cut_through_a_tie():
    texts = ["a b", "c d", "e f g", "h"]  # word counts 2 2 3 1
    for seed in range(30):
        k = MASK_RULES["WORD_SHORT"].choose(texts, random.Random(seed))["k"]
        assert k == 1  # k=2 would split the two 2-word instructions
    assert MASK_RULES["WORD_LONG"].choose(["a b", "c d"], random.Random(0)) is None


@pytest.mark.parametrize("seed", range(20))
def test_masks_hide_between_one_and_half(seed):
    rng = random.Random(seed)
    texts = [" ".join(["w"] * rng.randint(1, 30)) + str(i) for i in range(rng.randint(2, 12))]
    for rule in MASK_RULES.values():
        args = rule.choose(texts, rng)
        if args is None:
            continue
        hidden = len(texts) - len(rule.arrange(texts, args))
        assert 1 <= hidden <= len(texts) // 2, (rule.name, args)


def test_number_rules_need_numbering():
    numbered_only = {name for name, rule in {**ORDER_RULES, **MASK_RULES}.items() if rule.needs_numbering}
    assert numbered_only == {"FIX", "ODD_EVEN", "EVEN_ODD", "ODD", "EVEN"}
    for seed in range(50):
        plan = plan_sample(TEXTS, random.Random(seed), random.choice(["order", "mask"]), layout=PLAIN)
        assert plan.rule is None or not plan.rule.needs_numbering
    assert not applicable(ORDER_RULES["FIX"], TEXTS, numbered=False)
    with pytest.raises(ValueError):
        plan_sample(TEXTS, random.Random(0), "order", "ODD_EVEN", layout=PLAIN)


def test_single_instruction_falls_back_to_format():
    plan = plan_sample(["only one"], random.Random(0), "order", layout=NUMBERED)
    assert plan.strategy == "format" and plan.rule is None and plan.response_positions == [0]


def test_every_rule_has_several_phrasings_with_their_placeholders():
    for rule in {**ORDER_RULES, **MASK_RULES}.values():
        assert len(rule.phrasings) >= 3, rule.name
        for phrase in rule.phrasings:
            placeholders = {"{sequence}", "{numbers}", "{k}"} & {p for p in ("{sequence}", "{numbers}", "{k}") if p in phrase}
            assert len(placeholders) <= 1
    assert all("{sequence}" in p for p in ORDER_RULES["FIX"].phrasings)
    assert all("{numbers}" in p for p in MASK_RULES["FIX"].phrasings)


def test_a_new_rule_is_one_registered_entry():
    from mosaic_it.mosaic.rules import order_rule

    @order_rule("TEST_ROTATE", phrasings=("Start with the second instruction and wrap around.",) * 3)
    def rotate(texts, args):
        return list(range(1, len(texts))) + [0]

    try:
        plan = plan_sample(TEXTS, random.Random(0), "order", "TEST_ROTATE", layout=NUMBERED)
        assert plan.response_positions == [1, 2, 3, 4, 0]
        assert "wrap around" in plan.meta_instruction
    finally:
        del ORDER_RULES["TEST_ROTATE"]


def test_meta_instruction_sentences_start_and_end_with_a_non_space():
    # So each joining space starts a segment, and the packer may sum the sentences' counts
    # (engine.meta_pieces; tests/test_record_sums.py checks the sums).
    rng = random.Random(7)
    for _ in range(3000):
        texts = rng.sample(TEXTS, rng.randint(1, len(TEXTS)))
        plan = plan_sample(texts, rng, rng.choice(["format", "order", "mask"]), layout=draw_layout(rng))
        pieces = plan.meta_pieces
        assert plan.meta_instruction == "".join(pieces)
        for index, piece in enumerate(pieces):
            sentence = piece[1:] if index else piece
            assert sentence and sentence == sentence.strip() and (not index or piece[0] == " "), pieces

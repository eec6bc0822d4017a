"""Exact counts from memoized segments (mosaic_it.mosaic.segments) and their fallbacks: every count
equals the tokenizer's count of the whole text, on texts built to break pre-tokenization."""
from __future__ import annotations

import copy
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_it.mosaic.budget import SampleCounter, TokenCounter
from mosaic_it.mosaic.segments import COARSE, FINE, SegmentCounts, is_clean, splits_are_exact

ADVERSARIAL = [
    "  leading spaces", "trailing spaces  ", " ", "  ", "\n", "\n\n\n", "\t\ttabs\t", "a\r\nb\r\n",
    "!!!???... ---", "a,b;c", "'s 're 'll it's", "x's", "!'s?'ll9'd", "DON'T'S", "a_b-c`d~e^f", "12345 678 9", "3.14159 2,718", "1. 2) (3)\n",
    "中文文本，没有空格。", "日本語の テキスト です", "Ωmega ñandú", "emoji 😀😀 🎉x 👩\u200d👩\u200d👧",
    "no-space-at-all-in-this-long-text", "x", ".", "word", "a  b   c", " lead", "trail ",
    "mixed\n  indent\n\tline", "<|im_start|>user hi<|im_end|> <|endoftext|>",
    # Not clean: a separator or format character the regex engines may disagree on.
    "non\u00a0breaking space", "ideographic\u3000space", "zero\u200bwidth", "vertical\x0btab",
    "form\x0cfeed", "line\u2028separator", "file\x1cseparator", "mongolian\u180evowel",
]
JOINS = ["", " ", "\n", "\n\n", "1. ", "(2)\n", "<BEGIN>", "**END**", "'", "9", "\u00a0", "x"]


def whole(counter: TokenCounter, texts) -> list[int]:
    return [counter.exact(text) for text in texts]


def test_clean_means_printable_or_tab_newline_return():
    assert [is_clean(t) for t in ("a b", "a\tb\nc\r", "😀 中文", "", "a\u00a0b", "a\u200bb", "a\x0bb", "\x1c")] == [
        True, True, True, True, False, False, False, False]

    def defined(text: str) -> bool:
        return text.translate(str.maketrans("", "", "\t\n\r")).isprintable()

    for code in [*range(0x100), 0x2028, 0xFEFF, 0x1F600]:  # alone, among letters, after a newline
        for text in (chr(code), f"a{chr(code)}b", f"\n{chr(code)}", f"x\n{chr(code)}\u00e9"):
            assert is_clean(text) == defined(text), repr(text)


def test_coarse_cuts_only_where_non_whitespace_meets_whitespace():
    assert COARSE.findall("Hi there,\n\n  you  ") == ["Hi", " there,", "\n\n  you", "  "]
    assert COARSE.findall("  lead") == ["  lead"]


def test_fine_also_cuts_between_ascii_letters_digits_and_symbols_but_not_after_an_apostrophe():
    assert FINE.findall("\n2. Write <B>Sure, it's 12ab3.<END>\n\n(3)\n") == [
        "\n", "2", ".", " Write", " <", "B", ">", "Sure", ",", " it", "'s", " 12", "ab", "3", ".<", "END", ">",
        "\n", "\n", "(", "3", ")", "\n"]
    # The last tab, newline or return of a run before a non-space stands alone, the run before it too.
    assert FINE.findall("a\r\nb \n\n\nc\n\n \nd\n \te") == [
        "a", "\r", "\n", "b", " \n\n", "\n", "c", "\n\n ", "\n", "d", "\n ", "\t", "e"]
    assert FINE.findall("é1 x'y 9'z") == ["é1", " x", "'y", " 9", "'z"]  # no cut next to non-ASCII or after '


def _cut(text: str, p: int) -> bool:
    """The cuts of the module's docstrings, one position at a time: the reference for the patterns."""
    space, newline = " \t\n\r", "\t\n\r"
    x, y = text[p - 1], text[p]
    after = text[p + 1] if p + 1 < len(text) else ""

    def kind(c: str) -> str:
        return "L" if c.isascii() and c.isalpha() else "D" if c.isascii() and c.isdigit() else (
            "A" if c == "'" else "P" if c.isascii() and c not in space else "O" if c not in space else "W")

    coarse = x not in space and y in space
    newline_cut = (y in newline and after != "" and after not in space) or (x in newline and y not in space)
    fine = (kind(x), kind(y)) in {("L", "D"), ("L", "P"), ("L", "A"), ("D", "L"), ("D", "P"), ("D", "A"),
                                  ("P", "L"), ("P", "D")}
    return {"coarse": coarse, "fine": coarse or newline_cut or fine}


def _reference(text: str, which: str) -> list[str]:
    cuts = [0] + [p for p in range(1, len(text)) if _cut(text, p)[which]] + [len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\n\raZ09'.,<>|_-é中😀")), max_size=30))
def test_the_patterns_cut_exactly_where_the_rules_say(text):
    assert COARSE.findall(text) == _reference(text, "coarse")
    assert FINE.findall(text) == _reference(text, "fine")


def test_the_embedded_tokenizer_is_split_and_counts_every_text_exactly(embedded_tokenizer):
    counter = TokenCounter(embedded_tokenizer)
    assert splits_are_exact(embedded_tokenizer) and counter.segments is not None
    assert counter.count_many(ADVERSARIAL).tolist() == whole(counter, ADVERSARIAL)
    assert [counter.count(t) for t in ADVERSARIAL] == whole(counter, ADVERSARIAL)
    # Only clean texts go through the memo: none of the unclean ones' segments were learnt.
    assert "\u00a0breaking" not in " ".join(counter.segments.memo)


def test_samples_of_adversarial_pieces_count_exactly(embedded_tokenizer):
    counter = TokenCounter(embedded_tokenizer)
    exact = SampleCounter(counter, ADVERSARIAL)
    assert "non\u00a0breaking space" not in exact.shorts and "  leading spaces" not in exact.shorts  # 2 segments
    text = "mixed\n  indent\n\tline"
    assert exact.shorts[text] == "mixed\n\tline"
    assert exact.tokens[text] - exact.tokens["mixed\n\tline"] == counter.exact("\n  indent")
    rng = random.Random(0)
    for _ in range(300):
        side = []
        for _ in range(rng.randint(1, 6)):
            side += [rng.choice(JOINS), rng.choice(ADVERSARIAL)]
        assert exact.side_tokens(side) == counter.exact("".join(side)), side
        assert exact.piece_sum(side) == sum(whole(counter, side))


def test_fit_returns_the_exact_count_within_budget_and_none_beyond(embedded_tokenizer):
    counter = TokenCounter(embedded_tokenizer)
    exact = SampleCounter(counter, ADVERSARIAL)
    sides = (["1. ", ADVERSARIAL[0], "\n", "2. ", ADVERSARIAL[15]], ["<A>", ADVERSARIAL[18], "</A>"])
    tokens = counter.sample_tokens(["".join(side) for side in sides])
    estimate = sum(sum(whole(counter, side)) for side in sides)
    assert exact.fit(sides, max(tokens, estimate)) == tokens
    assert exact.fit(sides, tokens - 1) is None
    assert exact.fit(sides, estimate - 1) is None  # a sum of pieces over the budget never fits


def _variants(embedded_tokenizer):
    from tokenizers import AddedToken, Regex, normalizers, pre_tokenizers

    base = embedded_tokenizer.backend_tokenizer
    prefixed = copy.deepcopy(base)
    prefixed.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    normalized = copy.deepcopy(base)
    normalized.normalizer = normalizers.NFKC()
    split_first = copy.deepcopy(base)  # Llama-3 style: a Split regex, then byte-level without regex
    split_first.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\p{N}{1,3}| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    stripping = copy.deepcopy(base)
    stripping.add_tokens([AddedToken("<mark>", rstrip=True)])
    spaced = copy.deepcopy(base)
    spaced.add_tokens([AddedToken("two words")])
    return {"prefixed": prefixed, "normalized": normalized, "split_first": split_first,
            "stripping": stripping, "spaced": spaced}


@pytest.mark.parametrize("name", ["prefixed", "normalized", "split_first", "stripping", "spaced"])
def test_tokenizers_whose_cuts_are_not_proven_are_counted_whole(embedded_tokenizer, name):
    tokenizer = _variants(embedded_tokenizer)[name]
    texts = ADVERSARIAL + ["<mark> x", "two words", "a <mark>  b"]
    counter = TokenCounter(tokenizer)
    assert not splits_are_exact(tokenizer) and counter.segments is None
    assert counter.count_many(texts).tolist() == whole(counter, texts)
    exact = SampleCounter(counter, texts)
    assert exact.shorts == {}
    side = ["two", " words", "<mark>", " x", *texts[:5]]
    assert exact.side_tokens(side) == counter.exact("".join(side))


def test_segment_counts_learn_each_segment_once(embedded_tokenizer):
    counts = SegmentCounts(embedded_tokenizer)
    assert counts.count("the cat the cat") == len(embedded_tokenizer("the cat the cat", add_special_tokens=False)["input_ids"])
    assert set(counts.memo) == {"", "the", " cat", " the"}
    results = list(counts.cut_many(["one", "one two", "one two three four"]))
    assert [cut for _, cut in results] == [None, None, ("one four", 2)]


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.one_of(text, st.sampled_from(ADVERSARIAL + JOINS)), min_size=1, max_size=8))
def test_any_pieces_count_exactly(embedded_tokenizer, pieces):
    counter = TokenCounter(embedded_tokenizer)
    exact = SampleCounter(counter, pieces[::2])
    assert exact.side_tokens(pieces) == counter.exact("".join(pieces))
    assert counter.count_many(pieces).tolist() == whole(counter, pieces)


def test_a_text_holding_an_added_token_is_split_at_whitespace_only(embedded_tokenizer):
    counts = SegmentCounts(embedded_tokenizer)
    text = "<|im_start|>user\nhi<|im_end|> x"
    expected = len(embedded_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert counts.count(text, FINE) == expected
    assert "im" not in counts.memo and "<|im_start|>user" in counts.memo


def test_a_rest_is_counted_from_fine_segments_that_recur_where_pieces_meet(embedded_tokenizer):
    counts = SegmentCounts(embedded_tokenizer)
    counts.learn([" dog", ".<", "END", ">", "\n", "Sure"])
    known = set(counts.memo)
    text = " dog.<END>\nSure"
    assert counts.count(text, FINE) == len(embedded_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert set(counts.memo) == known  # the new join is counted from known parts

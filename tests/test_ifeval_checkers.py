"""Every IFEval checker on one response that follows its instruction and one that does not."""
from __future__ import annotations

import json

import pytest

from mosaic_it.evaluate.ifeval.checkers import CHECKERS
from mosaic_it.evaluate.ifeval.score import aggregate, follows, load_prompts, loose_variants, prompt_items, score_response
from mosaic_it.evaluate.ifeval.text import count_sentences, count_words

ENGLISH = "the quick brown fox jumps over the lazy dog while the farmer watches from the old barn"

CASES = [
    ("keywords:existence", {"keywords": ["fox", "barn"]}, "A fox in a Barn.", "A fox alone."),
    ("keywords:forbidden_words", {"forbidden_words": ["cat"]}, "Concatenate strings.", "My Cat sleeps."),
    ("keywords:frequency", {"keyword": "tea", "frequency": 2, "relation": "at least"},
     "Tea and more tea.", "Tea only."),
    ("keywords:frequency", {"keyword": "tea", "frequency": 2, "relation": "less than"},
     "Tea only.", "Tea, tea, tea."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 3, "let_relation": "at least"},
     "Zigzag zoo", "Zoo"),
    ("language:response_language", {"language": "fr"},
     "Le chat noir dort sur le canapé pendant que la pluie tombe dehors.", ENGLISH),
    ("change_case:english_lowercase", {}, ENGLISH, ENGLISH.capitalize()),
    ("change_case:english_capital", {}, ENGLISH.upper(), ENGLISH),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "less than"},
     "ONE word here", "ONE TWO words"),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"}, "one two three", "a b c d e f"),
    ("length_constraints:number_words", {"num_words": 5, "relation": "at least"}, "a b c d e f", "one two"),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"},
     "Dr. Smith arrived at 3 p.m. today.", "One. Two. Three."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "First.\n***\nSecond.", "Only one."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "***\nA\n***\nB\n***", "A\n***\n***\nB"),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "summer"},
     "Winter is cold.\n\n**Summer** is warm.", "Winter is cold.\n\nAutumn is mild."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name] at [address]", "Dear [name]"),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello.\n\nP.S. see you", "Hello."),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi.\nP.P.S more", "Hi.\nP.S. only"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two", "* one\n* two\n- three"),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "*first* and **second**", "*first* only and ** **"),
    ("detectable_format:title", {}, "<<My Poem>>\nroses", "My Poem\nroses"),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', "{a: 1}"),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nfoo\nSection 2\nbar", "Section 1\nfoo"),
    ("detectable_format:constrained_response", {}, "My answer is yes.", "Yes, definitely."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a poem."},
     "write a poem. Roses are red.", "Roses are red."),
    ("combination:two_responses", {}, "Answer one.\n******\nAnswer two.", "Same.\n******\nSame."),
    ("punctuation:no_comma", {}, "No commas here.", "Well, yes."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Done. Any other questions?", "Done."),
    ("startend:quotation", {}, '"Wrapped in quotes."', 'Not "wrapped".'),
]


def test_every_registered_checker_has_a_case():
    assert {case[0] for case in CASES} == set(CHECKERS)
    assert len(CHECKERS) == 25


@pytest.mark.parametrize("instruction_id,kwargs,good,bad", CASES)
def test_checker_passes_and_fails(instruction_id, kwargs, good, bad):
    assert follows(good, instruction_id, kwargs) is True
    assert follows(bad, instruction_id, kwargs) is False


def test_text_counts():
    assert count_words("It's a test, isn't it?") == 7
    assert count_sentences("Mr. Brown left. He came back! Did he? Yes.") == 4
    assert count_sentences("e.g. this stays one sentence.") == 1


def test_loose_forgives_a_preamble_line_and_asterisks():
    response = "Sure, here it is:\n\"The answer is **yes**\""
    assert not follows(response, "startend:quotation", {})
    assert follows(response, "startend:quotation", {}, loose=True)
    assert len(loose_variants("a\nb\nc")) == 8


def test_aggregate_prompt_and_instruction_levels():
    rows = [{"instruction_id_list": ["punctuation:no_comma", "startend:quotation"], "kwargs": [{}, {}]},
            {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}]
    scores = [score_response(rows[0], '"no comma"'), score_response(rows[1], "a, b")]
    metrics = aggregate(rows, scores)
    assert metrics["prompt_strict"] == 0.5
    assert metrics["instruction_strict"] == pytest.approx(2 / 3)
    assert metrics["strict/punctuation:no_comma"] == 0.5
    # Per-prompt items: ids from the IFEval key (or the position), a repeated key kept apart.
    rows[0]["key"] = rows[1]["key"] = 7
    items = prompt_items(rows, scores)
    assert [item for item, _ in items] == ["7", "7#1"]
    assert items[0][1]["instruction_strict"] == (2.0, 2.0) and items[1][1]["strict/punctuation:no_comma"] == (0.0, 1.0)


def test_shipped_ifeval_data_is_complete_and_checkable(repo_root, shared_data):
    shipped = load_prompts(repo_root / "data/eval/ifeval_input_data.jsonl")
    assert len(shipped) == 541
    assert shipped == load_prompts(shared_data / "eval/ifeval_input_data.jsonl")
    ids = {i for row in shipped for i in row["instruction_id_list"]}
    assert ids == set(CHECKERS)
    # Every checker accepts the keyword arguments the data gives it.
    for row in shipped:
        score_response(row, "placeholder response")
    assert len(load_prompts(repo_root / "data/eval/ifeval_input_data.jsonl", limit=7)) == 7


def test_unknown_instruction_is_a_user_error(tmp_path):
    from mosaic_it.errors import InputFileError

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x", "instruction_id_list": ["nope:nope"], "kwargs": [{}]}) + "\n")
    with pytest.raises(InputFileError, match="bad.jsonl:1"):
        load_prompts(bad)

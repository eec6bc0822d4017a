"""Prompt rendering and the response-only loss mask, checked by decoding the real tokenizer's ids."""
from __future__ import annotations

import pytest

from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import write_jsonl
from mosaic_it.records import instruction_text
from mosaic_it.train import data as train_data
from mosaic_it.train.data import IGNORE, VICUNA_SYSTEM, encode, encode_all, encode_many, load_records, render_pair

RECORD = {"instruction": "Name two primes.", "input": "Below ten, please.", "output": "Two and seven."}


def response_text(example, tokenizer) -> str:
    kept = [label for label in example.labels if label != IGNORE]
    return tokenizer.decode(kept)


def test_instruction_joins_input_after_a_blank_line():
    assert instruction_text(RECORD) == "Name two primes.\nBelow ten, please."
    assert instruction_text({**RECORD, "input": ""}) == "Name two primes."


def test_chat_template_mask_covers_exactly_the_response_and_end_of_turn(embedded_tokenizer):
    example, truncated = encode(RECORD, embedded_tokenizer, "chat_template", 512)
    assert not truncated
    assert response_text(example, embedded_tokenizer) == "Two and seven.<|im_end|>"
    first = example.labels.index(next(label for label in example.labels if label != IGNORE))
    prompt = embedded_tokenizer.decode(example.input_ids[:first])
    assert prompt.endswith("<|im_start|>user\nName two primes.\nBelow ten, please.<|im_end|>\n<|im_start|>assistant\n")
    # Labels are the ids themselves wherever they are not masked.
    assert all(label in (IGNORE, tok) for label, tok in zip(example.labels, example.input_ids))


def test_vicuna_mask_covers_exactly_the_response_and_eos(embedded_tokenizer):
    example, _ = encode(RECORD, embedded_tokenizer, "vicuna", 512)
    # The space after "ASSISTANT:" is part of the answer's first token, as in FastChat.
    assert response_text(example, embedded_tokenizer) == " Two and seven." + embedded_tokenizer.eos_token
    text = embedded_tokenizer.decode(example.input_ids)
    assert text.startswith(VICUNA_SYSTEM + " USER: Name two primes.")
    assert " ASSISTANT: Two and seven." in text


def test_truncation_is_counted_and_prompt_only_samples_are_dropped(embedded_tokenizer):
    long = {"instruction": "Repeat.", "input": "", "output": "word " * 400}
    huge_prompt = {"instruction": "word " * 400, "input": "", "output": "ok"}
    examples, stats = encode_all([RECORD, long, huge_prompt], embedded_tokenizer, "chat_template", 64)
    assert (stats.records, stats.truncated, stats.dropped) == (3, 1, 1)
    assert len(examples) == 2 and max(len(e) for e in examples) == 64


@pytest.mark.parametrize("prompt_format", ["chat_template", "vicuna"])
def test_batched_calls_give_each_record_the_ids_of_tokenizing_it_alone(embedded_tokenizer, prompt_format, monkeypatch):
    records = [RECORD, {"instruction": "Übersetze: ☃ ≠ 🙂", "input": "  tabs\tand\nlines ", "output": "Schneemann."},
               {"instruction": "Repeat.", "input": "", "output": "word " * 300}, {"instruction": "word " * 300, "input": "", "output": "ok"}]
    batched = encode_many(records, embedded_tokenizer, prompt_format, 128)
    assert batched == [encode(record, embedded_tokenizer, prompt_format, 128) for record in records]
    assert [truncated for _, truncated in batched] == [False, False, True, True] and batched[3][0] is None
    if prompt_format == "chat_template":  # against the tokenizer called once per text, directly
        prompt, response = render_pair(records[1], embedded_tokenizer, prompt_format)
        alone = [embedded_tokenizer(text, add_special_tokens=False)["input_ids"] for text in (prompt, response)]
        assert batched[1][0].input_ids == alone[0] + alone[1]
    assert encode_many([], embedded_tokenizer, prompt_format, 128) == []
    monkeypatch.setattr(train_data, "ENCODE_CHUNK", 3)  # records split over calls: same results
    assert encode_many(records, embedded_tokenizer, prompt_format, 128) == batched


def test_records_and_mosaic_samples_load_alike(tmp_path):
    mosaic = {"instruction": "A\nB", "input": "", "output": "[1]. a\n[2]. b", "count": 2, "mosaic": {"source_ids": [0, 1]}}
    write_jsonl(tmp_path / "m.jsonl", [mosaic, RECORD])
    assert load_records(tmp_path / "m.jsonl") == [
        {"instruction": "A\nB", "input": "", "output": "[1]. a\n[2]. b"}, RECORD]
    assert load_records(tmp_path / "m.jsonl", max_records=1)[0]["instruction"] == "A\nB"


def test_bad_training_files_name_the_file_and_line(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_records(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": 3}\n', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"bad.jsonl:2"):
        load_records(bad)

"""The validate stage in process: reasons per record come from Great Expectations' row results."""
from __future__ import annotations

import json

import pytest

from mosaic_it.config.data import ValidateConfig
from mosaic_it.data.validate import RejectedShareError, run_validation
from mosaic_it.jsonl import iter_jsonl

GOOD = {"instruction": "Name a colour.", "input": "", "output": "Blue."}

# (raw JSONL line, expected reasons); an empty list means the record is valid.
CASES: list[tuple[bytes, list[str]]] = [
    (json.dumps(GOOD).encode(), []),
    (b'{"instruction": "Add.", "input": "2 and 3", "output": "5"}', []),
    (b'{"instruction": "unterminated', ["malformed_json_line"]),
    (b'{"instruction": "bad \xff byte", "output": "x"}', ["invalid_utf8"]),
    (b'"a bare string"', ["not_an_object"]),
    (b'{"output": "no instruction"}', ["instruction_missing"]),
    (b'{"instruction": "no output"}', ["output_missing"]),
    (b'{"instruction": null, "output": "x"}', ["instruction_null"]),
    (b'{"instruction": "x", "input": null, "output": "y"}', ["input_null"]),
    (b'{"instruction": 7, "output": ["a"]}', ["instruction_not_a_string", "output_not_a_string"]),
    (b'{"instruction": "", "output": "y"}', ["instruction_empty"]),
    (b'{"instruction": "x", "output": "   \\n"}', ["output_empty"]),
    (json.dumps(GOOD).encode(), ["exact_duplicate"]),
    (b'{"instruction": "bell\\u0007", "output": "ok"}', ["instruction_control_characters"]),
    (b'{"instruction": "c1", "input": "\\u0085", "output": "ok"}', ["input_control_characters"]),
    (b'{"instruction": "tabs\\tand\\nnewlines\\r are fine", "output": "ok"}', []),
    (json.dumps({"instruction": "long", "output": "yes " * 76}).encode(), ["output_too_long"]),  # 304 chars, ~77 tokens
    (json.dumps({"instruction": "many tokens", "output": "x " * 140}).encode(), ["too_many_tokens"]),  # 280 chars, ~141 tokens
    (json.dumps({"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}).encode(), []),
    (json.dumps({"conversations": [{"from": "human", "value": "Q1"}, {"from": "gpt", "value": "A1"},
                                   {"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]}).encode(),
     ["multi_turn_conversation"]),
    (json.dumps({"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": None}]}).encode(),
     ["output_null"]),
]


@pytest.fixture(scope="module")
def mixed_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mixed") / "mixed.jsonl"
    path.write_bytes(b"\n".join(line for line, _ in CASES) + b"\n")
    return path


def config(input_path, out, **overrides):
    values = dict(max_output_chars=300, max_tokens=100, max_rejected_fraction=1.0)
    values.update(overrides)
    return ValidateConfig(input=str(input_path), output_dir=str(out), **values)


@pytest.fixture(scope="module")
def mixed_run(mixed_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return run_validation(config(mixed_file, out)), out


def test_every_record_gets_exactly_the_expected_reasons(mixed_run):
    report, out = mixed_run
    rejected = {row["position"]: row for row in iter_jsonl(out / "rejected.jsonl")}
    for position, (_, reasons) in enumerate(CASES):
        if reasons:
            assert rejected[position]["reasons"] == reasons, position
            assert rejected[position]["line"] == position + 1
        else:
            assert position not in rejected, (position, rejected.get(position))


def test_rejections_carry_what_great_expectations_observed(mixed_run, embedded_tokenizer):
    _, out = mixed_run
    rejected = {row["position"]: row for row in iter_jsonl(out / "rejected.jsonl")}
    assert rejected[12]["observed"] == {"duplicate_of": 0}
    assert rejected[9]["observed"] == {"instruction_type": "number", "output_type": "array"}
    expected_tokens = sum(len(embedded_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in ("many tokens", "x " * 140))
    assert rejected[17]["observed"] == {"tokens": expected_tokens}
    assert "observed" not in rejected[13]  # a text check: the text is in the record itself


def test_valid_file_holds_clean_records_in_order(mixed_run):
    report, out = mixed_run
    valid = list(iter_jsonl(out / "valid.jsonl"))
    positions = json.loads((out / "valid_positions.json").read_text())
    assert positions == [i for i, (_, reasons) in enumerate(CASES) if not reasons]
    assert valid[0] == GOOD
    assert valid[-1] == {"instruction": "Hi?", "input": "", "output": "Hello."}
    assert all(set(r) == {"instruction", "input", "output"} for r in valid)


def test_report_counts_and_invariant(mixed_run, mixed_file):
    report, out = mixed_run
    saved = json.loads((out / "report.json").read_text())
    expected_valid = sum(1 for _, reasons in CASES if not reasons)
    assert saved["total"] == report.total == len(CASES)
    assert saved["valid"] == expected_valid
    assert saved["valid"] + saved["rejected"] == saved["total"]
    assert saved["reasons"]["exact_duplicate"] == 1
    assert sum(saved["reasons"].values()) == sum(len(r) for _, r in CASES)
    import hashlib

    assert saved["input_sha256"] == hashlib.sha256(mixed_file.read_bytes()).hexdigest()


def test_unparsed_lines_keep_their_text_and_parsed_ones_their_record(mixed_run):
    _, out = mixed_run
    rejected = {row["position"]: row for row in iter_jsonl(out / "rejected.jsonl")}
    assert rejected[2]["raw_text"] == '{"instruction": "unterminated'
    assert rejected[4]["record"] == "a bare string"
    assert rejected[9]["record"] == {"instruction": 7, "output": ["a"]}


def test_data_docs_are_written(mixed_run):
    _, out = mixed_run
    index = out / "data_docs" / "index.html"
    pages = list((out / "data_docs" / "validations").rglob("*.html"))
    assert index.stat().st_size > 5000
    assert len(pages) == 1
    page = pages[0].read_text(encoding="utf-8")
    assert "expect_column_values_to_not_match_regex" in page or "not match" in page.lower()
    assert "duplicate_of" in page and "instruction_type" in page


def test_rejected_share_over_threshold_raises_after_writing(mixed_file, tmp_path):
    cfg = config(mixed_file, tmp_path, max_rejected_fraction=0.1)
    with pytest.raises(RejectedShareError, match="max_rejected_fraction") as caught:
        run_validation(cfg)
    assert caught.value.report.rejected > 0
    assert (tmp_path / "report.json").exists() and (tmp_path / "rejected.jsonl").exists()
    assert (tmp_path / "data_docs" / "index.html").exists()


def test_duplicates_are_kept_when_configured(mixed_file, tmp_path):
    report = run_validation(config(mixed_file, tmp_path, drop_exact_duplicates=False))
    assert "exact_duplicate" not in report.reasons
    assert 12 not in {row["position"] for row in iter_jsonl(tmp_path / "rejected.jsonl")}


def test_minimum_lengths_above_one_reject_short_texts(tmp_path):
    path = tmp_path / "short.json"
    path.write_text(json.dumps([{"instruction": "Hi", "output": "Long enough answer"},
                                {"instruction": "Say more", "output": "ok"}]))
    report = run_validation(config(path, tmp_path / "out", min_instruction_chars=3, min_output_chars=3))
    assert report.reasons == {"instruction_too_short": 1, "output_too_short": 1}


def test_bundled_sample_is_clean(sample_data, tmp_path):
    report = run_validation(ValidateConfig(input=str(sample_data), output_dir=str(tmp_path)))
    assert (report.total, report.valid, report.rejected) == (2000, 2000, 0)

"""Reading user files: formats, positions and line numbers, record faults, file faults."""
from __future__ import annotations

import json

import pytest

from mosaic_it.data.ingest import MISSING, read_records
from mosaic_it.errors import InputFileError


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_json_array_positions_and_start_lines(tmp_path):
    records = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(3)]
    path = write(tmp_path, "data.json", json.dumps(records, indent=1))
    result = read_records(path)
    assert result.format == "json"
    assert [r.position for r in result.records] == [0, 1, 2]
    lines = path.read_text().splitlines()
    for r in result.records:
        assert lines[r.line - 1].strip() == "{"
        assert r.fields == records[r.position]
    assert [r.line for r in result.records] == [2, 7, 12]


def test_compact_json_array_and_bom(tmp_path):
    path = write(tmp_path, "data.json", b"\xef\xbb\xbf" + b'[{"instruction":"a","output":"b"},{"instruction":"c","output":"d"}]')
    result = read_records(path)
    assert [r.line for r in result.records] == [1, 1]
    assert result.records[0].fields == {"instruction": "a", "input": "", "output": "b"}


def test_format_is_detected_from_content_not_extension(tmp_path):
    path = write(tmp_path, "data.json", '{"instruction":"a","output":"b"}\n{"instruction":"c","output":"d"}\n')
    assert read_records(path).format == "jsonl"
    path = write(tmp_path, "data.jsonl", '[{"instruction":"a","output":"b"}]')
    assert read_records(path).format == "json"


def test_jsonl_record_faults_keep_going(tmp_path):
    content = (
        b'{"instruction":"a","output":"b"}\n'
        b"\n"
        b'{"instruction": "broken", \n'
        b'{"instruction":"caf\xe9","output":"x"}\n'
        b"[1, 2]\n"
        b'{"instruction":null,"output":3}\r\n'
    )
    result = read_records(write(tmp_path, "data.jsonl", content))
    assert [(r.position, r.line, r.fault) for r in result.records] == [
        (0, 1, None),
        (1, 3, "malformed_json_line"),
        (2, 4, "invalid_utf8"),
        (3, 5, "not_an_object"),
        (4, 6, None),
    ]
    assert result.records[1].raw == '{"instruction": "broken", '
    assert "\\xe9" in result.records[2].raw
    assert result.records[4].fields == {"instruction": None, "input": "", "output": 3}


def test_missing_fields_are_marked_not_nulled(tmp_path):
    result = read_records(write(tmp_path, "d.jsonl", '{"output":"b"}\n{"instruction":"a","input":null}\n'))
    assert result.records[0].fields["instruction"] is MISSING
    assert result.records[1].fields["output"] is MISSING
    assert result.records[1].fields["input"] is None


@pytest.mark.parametrize(
    "record, expected",
    [
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
         {"instruction": "hi", "input": "", "output": "hello"}),
        ({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                       {"role": "assistant", "content": "hello"}]},
         {"instruction": "Be brief.\n\nhi", "input": "", "output": "hello"}),
        ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
         {"instruction": "q", "input": "", "output": "a"}),
    ],
)
def test_single_turn_chat_records_are_normalised(tmp_path, record, expected):
    result = read_records(write(tmp_path, "chat.jsonl", json.dumps(record) + "\n"))
    assert result.records[0].fault is None
    assert result.records[0].fields == expected


@pytest.mark.parametrize(
    "record, fault",
    [
        ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"},
                            {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a2"}]},
         "multi_turn_conversation"),
        ({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]},
         "malformed_conversation"),
        ({"messages": [{"role": "narrator", "content": "x"}]}, "malformed_conversation"),
        ({"messages": "hello"}, "malformed_conversation"),
    ],
)
def test_unusable_chat_records_are_rejected_not_fatal(tmp_path, record, fault):
    result = read_records(write(tmp_path, "chat.jsonl", json.dumps(record) + "\n"))
    assert result.records[0].fault == fault


@pytest.mark.parametrize(
    "content, message, line",
    [
        ("", "file is empty", None),
        ("  \n\n ", "file is empty", None),
        ("[]", "file holds no records", None),
        ('[\n{"instruction": "a", "output": "b"},\n{"instruction": "c" "output": "d"}\n]', "invalid JSON array", 3),
        ('[\n{"instruction": "a", "output": "b"},\n]', "invalid JSON array", 3),
        ('[\n{"instruction": "a", "output": "b"}\n', "invalid JSON array", 3),
        ('[{"instruction": "a", "output": "b"}]\n[1]', "after the closing", 2),
        ('{\n  "instruction": "a",\n  "output": "b"\n}\n', "top level is a JSON object", None),
        ('"just a string"', "top level is a JSON string", None),
        ("42", "top level is a JSON number", None),
    ],
)
def test_file_level_faults_name_file_and_line(tmp_path, content, message, line):
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(InputFileError) as caught:
        read_records(path)
    assert caught.value.path == str(path)
    assert message in str(caught.value)
    assert caught.value.line == line


def test_invalid_utf8_in_a_json_array_is_a_file_fault_with_line(tmp_path):
    path = write(tmp_path, "bad.json", b'[\n{"instruction": "a", "output": "b"},\n{"instruction": "\xff"}\n]')
    with pytest.raises(InputFileError, match="not valid UTF-8") as caught:
        read_records(path)
    assert caught.value.line == 3


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        read_records(tmp_path / "nope.json")


def test_whole_shared_file_matches_json_loads(shared_data):
    path = shared_data / "alpaca_cleaned.json"
    result = read_records(path)
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert len(result.records) == len(expected) == 51924
    assert [r.raw for r in result.records] == expected
    lines = path.read_text(encoding="utf-8").splitlines()
    assert all(lines[r.line - 1].strip() == "{" for r in result.records)

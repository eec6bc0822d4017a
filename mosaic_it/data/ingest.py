"""Reading user instruction data: Alpaca JSON arrays, JSON Lines, and single-turn chat records.

A fault in one record rejects that record (it keeps its position and a reason) and reading goes on;
a fault that makes the whole file unreadable raises InputFileError naming the file and line.
The format is told from the content: a file whose first non-blank character is `[` is a JSON array,
anything else is read as JSON Lines.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic_it.data.conversations import is_conversation, normalise_conversation
from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import has_lone_surrogate, require_file, text_start

TEXT_FIELDS = ("instruction", "input", "output")
# The record is kept as its source text: invalid UTF-8, broken JSON, or a lone surrogate escape
# ("\ud800"), which parses but can be neither written as UTF-8 nor tokenized.
UNPARSED_FAULTS = ("invalid_utf8", "malformed_json_line", "lone_surrogate")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_KINDS = {str: "a JSON string", int: "a JSON number", float: "a JSON number",
               bool: "a JSON boolean", type(None): "JSON null"}


class _Missing:
    """Marks a field absent from the record, as distinct from a field set to null."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(slots=True)
class InputRecord:
    position: int  # 0-based index among the records of the file
    line: int | None  # 1-based line where the record starts
    raw: Any  # the parsed JSON value, or the line's text when it could not be parsed
    fields: dict[str, Any] | None = None  # instruction/input/output as found; None when unusable
    fault: str | None = None  # why ingest rejected it; None when it goes on to validation


@dataclass(slots=True)
class IngestResult:
    path: str
    format: str  # "json" or "jsonl"
    sha256: str
    records: list[InputRecord]


def read_records(path: str | Path) -> IngestResult:
    path = require_file(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    data = data[text_start(path, data[:4]):]
    stripped = data.lstrip()
    if not stripped:
        raise InputFileError(path, "file is empty")
    if stripped.startswith(b"["):
        fmt, records = "json", _read_array(path, _decode_whole(path, data))
    else:
        _refuse_single_document(path, data)
        fmt, records = "jsonl", _read_lines(data)
    if not records:
        raise InputFileError(path, "file holds no records")
    return IngestResult(str(path), fmt, digest, records)


def _decode_whole(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, "not valid UTF-8", data.count(b"\n", 0, exc.start) + 1) from None


def _read_array(path: Path, text: str) -> list[InputRecord]:
    # raw_decode element by element (instead of one json.loads) gives each record its line number.
    decoder = json.JSONDecoder()
    records: list[InputRecord] = []
    line, counted_to = 1, 0

    def skip_space(i: int) -> int:
        return _JSON_SPACE.match(text, i).end()

    def fail(message: str, i: int) -> InputFileError:
        return InputFileError(path, f"invalid JSON array: {message}", text.count("\n", 0, i) + 1)

    i = skip_space(skip_space(0) + 1)
    if text.startswith("]", i):
        i += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError as exc:
                raise InputFileError(path, f"invalid JSON array: {exc.msg}", exc.lineno) from None
            except RecursionError:
                raise fail("a record is nested too deeply", i) from None
            line += text.count("\n", counted_to, i)
            counted_to = i
            records.append(_from_value(len(records), line, value, text[i:end]))
            i = skip_space(end)
            if text.startswith(",", i):
                i = skip_space(i + 1)
            elif text.startswith("]", i):
                i += 1
                break
            else:
                raise fail("expected ',' or ']' after a record", i)
    if skip_space(i) != len(text):
        raise fail("unexpected content after the closing ']'", skip_space(i))
    return records


def _refuse_single_document(path: Path, data: bytes) -> None:
    """A file that is one JSON object spread over several lines, or one scalar, is not JSON Lines."""
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return  # several documents, or broken lines: read line by line
    if isinstance(value, dict) and len([ln for ln in data.splitlines() if ln.strip()]) == 1:
        return  # a one-record JSON Lines file
    kind = _JSON_KINDS.get(type(value), "a JSON object")
    raise InputFileError(
        path, f"top level is {kind}; expected an array of records or JSON Lines (one object per line)"
    )


def _read_lines(data: bytes) -> list[InputRecord]:
    records: list[InputRecord] = []
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        position = len(records)
        try:
            text = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            text = raw_line.decode("utf-8", errors="backslashreplace").rstrip("\r")
            records.append(InputRecord(position, number, text, fault="invalid_utf8"))
            continue
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            records.append(InputRecord(position, number, text.rstrip("\r"), fault="malformed_json_line"))
            continue
        records.append(_from_value(position, number, value, text.rstrip("\r")))
    return records


def _from_value(position: int, line: int | None, value: Any, source: str) -> InputRecord:
    if has_lone_surrogate(source, value):
        return InputRecord(position, line, source, fault="lone_surrogate")
    record = InputRecord(position, line, value)
    if not isinstance(value, dict):
        record.fault = "not_an_object"
    elif "instruction" not in value and is_conversation(value):
        record.fields, record.fault = normalise_conversation(value, MISSING)
    else:
        record.fields = {
            "instruction": value.get("instruction", MISSING),
            "input": value.get("input", ""),  # optional in Alpaca data
            "output": value.get("output", MISSING),
        }
    return record

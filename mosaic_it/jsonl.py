"""Deterministic JSONL writing, and the one reading of JSON Lines shared by every stage.

Input text is UTF-8; a UTF-8 byte-order mark is accepted and skipped (ingest does the same), while
compressed and UTF-16/32 files are refused with a message that says what they are.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mosaic_it.atomic import atomic_open, write_text
from mosaic_it.errors import InputFileError

UTF8_BOM = b"\xef\xbb\xbf"
COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"(\xb5/\xfd": "zstd", b"PK\x03\x04": "zip"}
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def dumps(obj: Any) -> str:
    # Fixed separators and key order keep output files byte-identical across runs.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def write_jsonl(path: str | Path, rows: Iterable[Any], fsync: bool = False) -> int:
    """Rows appear at `path` only once all of them were written (see mosaic_it.atomic)."""
    count = 0
    with atomic_open(path, "w", encoding="utf-8", newline="\n", fsync=fsync) as handle:
        for row in rows:
            handle.write(dumps(row))
            handle.write("\n")
            count += 1
    return count


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSON Lines file (see iter_jsonl_lines)."""
    for _, row in iter_jsonl_lines(path):
        yield row


def iter_jsonl_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; anything else is an InputFileError naming
    the file and line. The one text format every stage reads: UTF-8, a leading BOM skipped."""
    path = require_file(path)
    with path.open("rb") as handle:
        handle.seek(text_start(path, handle.read(4)))
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, parse_object(path, number, raw)


def require_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise InputFileError(path, "is a folder, not a file")
    if not path.exists():
        raise InputFileError(path, "no such file")
    if not path.is_file():
        raise InputFileError(path, "not a regular file")
    return path


def text_start(path: Path, head: bytes) -> int:
    """Where the text starts (after a UTF-8 BOM); compressed and UTF-16/32 files are refused by name."""
    for magic, kind in COMPRESSED.items():
        if head.startswith(magic):
            raise InputFileError(path, f"{kind}-compressed file: decompress it first")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 2 and (head[0] == 0) != (head[1] == 0)):
        raise InputFileError(path, "UTF-16 or UTF-32 text: save it as UTF-8")
    return len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0


def parse_object(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
    except UnicodeDecodeError:
        raise InputFileError(path, "not valid UTF-8", number) from None
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc.msg})", number) from None
    except RecursionError:
        raise InputFileError(path, "JSON nested too deeply", number) from None
    if not isinstance(value, dict):
        raise InputFileError(path, "expected a JSON object", number)
    if has_lone_surrogate(text, value):
        raise InputFileError(path, "a string holds a lone surrogate (\\ud800-\\udfff), which is not text", number)
    return value


def has_lone_surrogate(source: str, value: Any) -> bool:
    """Whether a string in `value` (parsed from `source`) holds half a surrogate pair: such a string
    cannot be written as UTF-8 or tokenized, so the record is rejected where it is read."""
    if not SURROGATE_ESCAPE.search(source):
        return False  # only a \\u escape can produce one; valid UTF-8 input cannot
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def write_json(path: str | Path, obj: Any, fsync: bool = False) -> None:
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n", fsync=fsync)

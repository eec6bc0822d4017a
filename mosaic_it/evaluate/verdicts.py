"""The judge's finished replies, kept on disk as they arrive so that a rerun asks only what is left.

One append-only JSON Lines file per test set; each line is {"key", "id", "replies"}. The key hashes
everything the verdict depends on (judge model and URL, prompt template, question, both answers),
so a changed answer or judge is asked again. Only the two raw replies are stored: scores and outcome
are recomputed from them on every read, and a torn last line (a run killed mid-write) or any line
of the wrong shape is skipped, which means that pair is simply asked again.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import IO

from mosaic_it.errors import InputFileError


def pair_key(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


def read_journal(path: Path) -> dict[str, list[str]]:
    """key -> the two replies, for every well-formed line of the journal (none if it is absent)."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise InputFileError(path, "verdict journal is not a regular file; remove it to judge again")
    if not path.exists():
        return {}
    done: dict[str, list[str]] = {}
    for line in path.read_bytes().split(b"\n"):
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue
        replies = row.get("replies") if isinstance(row, dict) else None
        if (isinstance(row, dict) and isinstance(row.get("key"), str) and isinstance(replies, list)
                and len(replies) == 2 and all(isinstance(r, str) for r in replies)):
            done[row["key"]] = replies
    return done


def open_journal(path: Path) -> IO[str]:
    """The journal opened for appending; a line is flushed as soon as it is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise InputFileError(path, "verdict journal is a symlink; refusing to write through it")
    handle = path.open("a", encoding="utf-8", newline="\n", buffering=1)  # line-buffered
    if handle.tell() and not _ends_with_newline(path):
        handle.write("\n")  # a torn last line stays on its own line and is skipped on read
    return handle


def append(handle: IO[str], key: str, record_id: object, replies: list[str]) -> None:
    handle.write(json.dumps({"key": key, "id": record_id, "replies": replies}, ensure_ascii=False) + "\n")
    handle.flush()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as raw:
        raw.seek(-1, 2)
        return raw.read(1) == b"\n"

"""Deterministic JSONL writing and reading shared by every stage."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mosaic_it.atomic import atomic_open, write_text


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
    """Read a JSONL file this project wrote; user input goes through mosaic_it.data.ingest instead."""
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def write_json(path: str | Path, obj: Any, fsync: bool = False) -> None:
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n", fsync=fsync)

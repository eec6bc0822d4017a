"""The pairwise test sets: each file's own fields normalised to {"id", "prompt"}."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import iter_jsonl_lines
from mosaic_it.records import instruction_text

Row = dict[str, Any]


def _self_instruct_prompt(row: Row) -> str:
    instances = row.get("instances") or [{}]
    return instruction_text({"instruction": row["instruction"], "input": (instances[0].get("input") or "").strip()})


@dataclass(frozen=True)
class TestSet:
    file: str
    ident: Callable[[Row, int], str]
    prompt: Callable[[Row], str]


TEST_SETS: dict[str, TestSet] = {
    "wizardlm": TestSet("wizardlm_test.jsonl", lambda r, n: str(r["idx"]), lambda r: r["Instruction"]),
    "koala": TestSet("koala_test.jsonl", lambda r, n: str(r["id"]), lambda r: r["prompt"]),
    "vicuna": TestSet("vicuna_80.jsonl", lambda r, n: str(r["question_id"]), lambda r: r["text"]),
    "self_instruct": TestSet("self_instruct_252.jsonl", lambda r, n: str(r["id"]), _self_instruct_prompt),
    "lima": TestSet("lima_test.jsonl", lambda r, n: str(n), lambda r: r["conversations"]),
}


def load_test_set(name: str, directory: str | Path, limit: int | None = None) -> list[dict[str, str]]:
    spec = TEST_SETS[name]
    path = Path(directory) / spec.file
    if not path.exists():
        raise InputFileError(path, f"test set {name} not found")
    rows = []
    for number, row in iter_jsonl_lines(path):
        try:
            prompt = spec.prompt(row)
            ident = spec.ident(row, number)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputFileError(path, f"not a {name} row ({exc!r})", number) from None
        if isinstance(prompt, list) and prompt:  # a conversation given as turns: its first turn is asked
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise InputFileError(path, f"not a {name} row (the prompt is not text)", number)
        rows.append({"id": ident, "prompt": prompt.strip()})
        if limit is not None and len(rows) >= limit:
            break
    return rows

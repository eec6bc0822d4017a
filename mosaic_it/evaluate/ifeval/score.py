"""Strict and loose IFEval accuracy, at prompt level and instruction level."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import iter_jsonl_lines
from mosaic_it.evaluate import items
from mosaic_it.evaluate.items import ItemRow
from mosaic_it.evaluate.ifeval.checkers import CHECKERS


def load_prompts(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    for number, row in iter_jsonl_lines(path):  # a missing file is an InputFileError too
        try:
            unknown = [i for i in row["instruction_id_list"] if i not in CHECKERS]
            row["prompt"], row["kwargs"]  # both are required
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFileError(path, f"not an IFEval row ({exc})", number) from None
        if unknown:
            raise InputFileError(path, f"unknown instruction id {unknown[0]}", number)
        if not isinstance(row["prompt"], str):
            raise InputFileError(path, "not an IFEval row (the prompt is not text)", number)
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    return rows


def loose_variants(response: str) -> list[str]:
    """The response, without its first line, last line, or both; each also without asterisks."""
    lines = response.split("\n")
    cut = [response, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return cut + [c.replace("*", "") for c in cut]


def follows(response: str, instruction_id: str, kwargs: Mapping[str, Any], loose: bool = False) -> bool:
    arguments = {k: v for k, v in kwargs.items() if v is not None}
    checker = CHECKERS[instruction_id]
    candidates = loose_variants(response) if loose else [response]
    return any(c.strip() and checker(c, **arguments) for c in candidates)


def score_response(row: Mapping[str, Any], response: str) -> dict[str, list[bool]]:
    pairs = list(zip(row["instruction_id_list"], row["kwargs"]))
    return {
        "strict": [follows(response, i, k) for i, k in pairs],
        "loose": [follows(response, i, k, loose=True) for i, k in pairs],
    }


def prompt_items(rows: Sequence[Mapping[str, Any]], scores: Iterable[Mapping[str, list[bool]]]) -> list[ItemRow]:
    """One item per prompt, id = its IFEval key; instruction-level metrics count instructions."""
    result: list[ItemRow] = []
    seen: set[str] = set()
    for index, (row, score) in enumerate(zip(rows, scores)):
        values: dict[str, tuple[float, float]] = {}
        for mode in ("strict", "loose"):
            oks = score[mode]
            values[f"prompt_{mode}"] = (float(all(oks)), 1.0)
            values[f"instruction_{mode}"] = (float(sum(oks)), float(len(oks)))
            per_id: dict[str, list[bool]] = defaultdict(list)
            for instruction_id, ok in zip(row["instruction_id_list"], oks):
                per_id[instruction_id].append(ok)
            values.update({f"{mode}/{i}": (float(sum(v)), float(len(v))) for i, v in sorted(per_id.items())})
        key = str(row["key"]) if row.get("key") is not None else f"#{index}"
        key = key if key not in seen else f"{key}#{index}"  # a repeated key must not merge two prompts
        seen.add(key)
        result.append((key, values))
    return result


def aggregate(rows: Sequence[Mapping[str, Any]], scores: Iterable[Mapping[str, list[bool]]]) -> dict[str, float]:
    return items.aggregate(prompt_items(rows, scores))

"""The table Great Expectations validates: one row per parsed record, keyed by its position.

Every column holds a fact about the record that an expectation can judge on its own row:
the JSON type of each field, the text itself (None unless it is a string), the token count, and
the position of an earlier identical record. The judging itself is left to the suite.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from mosaic_it.data.ingest import MISSING, TEXT_FIELDS, InputRecord
from mosaic_it.models.tokenizer import count_tokens
from mosaic_it.records import instruction_text


def json_kind(value: Any) -> str:
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "str"
    return {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def build_frame(records: Sequence[InputRecord], tokenizer_loader) -> pd.DataFrame:
    """One row per record; `tokenizer_loader()` is called only when some record has all three texts."""
    columns: dict[str, Any] = {"position": [r.position for r in records]}
    for field in TEXT_FIELDS:
        values = [r.fields[field] for r in records]
        columns[f"{field}_type"] = [json_kind(v) for v in values]
        columns[field] = [v if isinstance(v, str) else None for v in values]

    complete = [
        i for i in range(len(records))
        if all(columns[f][i] is not None for f in TEXT_FIELDS)
    ]
    tokens: list[int | None] = [None] * len(records)
    if complete:
        # Count what augment will place in a sample, so a record that passes here fits its budget.
        prompts = [
            instruction_text({"instruction": columns["instruction"][i], "input": columns["input"][i]})
            for i in complete
        ]
        outputs = [columns["output"][i] for i in complete]
        counts = count_tokens(tokenizer_loader(), prompts + outputs)
        for k, i in enumerate(complete):
            tokens[i] = int(counts[k] + counts[k + len(complete)])

    first_seen: dict[tuple[str, str, str], int] = {}
    duplicate_of: list[int | None] = [None] * len(records)
    for i in complete:
        key = (columns["instruction"][i], columns["input"][i], columns["output"][i])
        earlier = first_seen.setdefault(key, records[i].position)
        if earlier != records[i].position:
            duplicate_of[i] = earlier

    columns["tokens"] = pd.array(tokens, dtype="Int64")
    columns["duplicate_of"] = pd.array(duplicate_of, dtype="Int64")
    frame = pd.DataFrame(columns)
    for field in TEXT_FIELDS:  # keep text columns object-typed even when all values are None
        frame[field] = frame[field].astype(object)
    return frame

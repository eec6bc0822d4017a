"""Property: whatever the records, each lands in exactly one of valid/rejected, and the valid ones are clean."""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_it.config.data import ValidateConfig
from mosaic_it.data.validate import run_validation
from mosaic_it.jsonl import iter_jsonl

MAX_CHARS = 600
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
ABSENT = object()

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=MAX_CHARS - 5, max_size=MAX_CHARS + 5),
    st.sampled_from(["", " ", "\n\t", "same", "caf\u00e9 \U0001f600", "a\x00b", "\u0085"]),
)
values = st.one_of(texts, texts, texts, st.none(), st.integers(), st.lists(st.text(max_size=3), max_size=2))
alpaca = st.fixed_dictionaries(
    {}, optional={"instruction": values, "input": values, "output": values}
)
chat = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": values}),
    max_size=4,
).map(lambda turns: {"messages": turns})
record = st.one_of(alpaca, alpaca, alpaca, chat, st.integers(), st.text(max_size=5))
garbage_line = st.text(max_size=30).filter(lambda s: "\n" not in s).map(lambda s: "{" + s)


def is_clean(value) -> bool:
    return isinstance(value, str) and len(value) <= MAX_CHARS and not CONTROL.search(value)


def expected_valid(row) -> bool:
    """Oracle for plain Alpaca records (chat and garbage rows are checked by the invariant only)."""
    instruction, output = row.get("instruction", ABSENT), row.get("output", ABSENT)
    input_text = row.get("input", "")
    return (
        is_clean(instruction) and is_clean(output) and is_clean(input_text)
        and instruction.strip() != "" and output.strip() != ""
    )


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    rows=st.lists(st.one_of(record, record, record, garbage_line), min_size=1, max_size=25),
    as_array=st.booleans(),
)
def test_every_record_lands_in_exactly_one_place(rows, as_array, embedded_tokenizer):
    if as_array:
        rows = [r for r in rows if not (isinstance(r, str) and r.startswith("{"))] or [{}]
    elif len(rows) == 1 and not isinstance(rows[0], dict):
        rows.append({})  # a file that is one bare JSON scalar is refused as a whole (tested in test_ingest)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.txt"
        if as_array:
            path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
        else:
            lines = [r if isinstance(r, str) and r.startswith("{") else json.dumps(r, ensure_ascii=False) for r in rows]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cfg = ValidateConfig(
            input=str(path), output_dir=str(Path(tmp) / "out"), max_instruction_chars=MAX_CHARS,
            max_input_chars=MAX_CHARS, max_output_chars=MAX_CHARS, max_tokens=10**6, max_rejected_fraction=1.0,
        )
        report = run_validation(cfg)
        out = Path(cfg.output_dir)
        valid_positions = json.loads((out / "valid_positions.json").read_text())
        rejected = list(iter_jsonl(out / "rejected.jsonl"))
        valid = list(iter_jsonl(out / "valid.jsonl"))

    rejected_positions = [row["position"] for row in rejected]
    assert report.total == len(rows) == report.valid + report.rejected
    assert len(valid) == len(valid_positions) == report.valid
    assert sorted(valid_positions + rejected_positions) == list(range(len(rows)))
    assert all(row["reasons"] for row in rejected)

    seen = set()
    for position, clean in zip(valid_positions, valid):
        assert all(is_clean(clean[f]) for f in ("instruction", "input", "output"))
        key = (clean["instruction"], clean["input"], clean["output"])
        assert key not in seen
        seen.add(key)
        if isinstance(rows[position], dict) and "messages" not in rows[position]:
            assert clean == {"instruction": rows[position]["instruction"],
                             "input": rows[position].get("input", ""), "output": rows[position]["output"]}

    # Plain records the oracle calls clean are valid unless an earlier record (of either shape) says
    # the same thing; a chat record with the same content as a clean one is clean too.
    valid_at = dict(zip(valid_positions, valid))
    seen_keys, expected = set(), set()
    for position, row in enumerate(rows):
        if isinstance(row, dict) and "messages" in row and position in valid_at:
            seen_keys.add(tuple(valid_at[position].values()))
        elif isinstance(row, dict) and "messages" not in row and expected_valid(row):
            key = (row["instruction"], row.get("input", ""), row["output"])
            if key not in seen_keys:
                expected.add(position)
            seen_keys.add(key)
    plain_valid = {p for p in valid_positions if isinstance(rows[p], dict) and "messages" not in rows[p]}
    assert plain_valid == expected

"""The Great Expectations suite over the record table (see frame.py), one declarative row per check.

Each check carries the reason it gives a failing record; validate.py reads the reasons back from
Great Expectations' row-level results. Adding a check is adding one `Check(...)` line below.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mosaic_it.config.data import ValidateConfig

# C0 and C1 control characters and DEL, except tab, line feed and carriage return.
CONTROL_CHARACTERS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
NOT_BLANK = r"\S"


@dataclass(frozen=True)
class Check:
    reason: str
    expectation: str  # class name in great_expectations.expectations
    kwargs: dict[str, Any] = field(default_factory=dict)


def _field_checks(name: str, required: bool, min_chars: int, max_chars: int) -> list[Check]:
    kind = f"{name}_type"
    checks = []
    if required:
        checks.append(Check(f"{name}_missing", "ExpectColumnValuesToNotBeInSet", {"column": kind, "value_set": ["missing"]}))
    checks += [
        Check(f"{name}_null", "ExpectColumnValuesToNotBeInSet", {"column": kind, "value_set": ["null"]}),
        Check(f"{name}_not_a_string", "ExpectColumnValuesToBeInSet", {"column": kind, "value_set": ["str", "missing", "null"]}),
    ]
    if required:
        checks.append(Check(f"{name}_empty", "ExpectColumnValuesToMatchRegex", {"column": name, "regex": NOT_BLANK}))
    if min_chars > 1:  # a minimum of 1 is exactly the emptiness check above
        checks.append(Check(f"{name}_too_short", "ExpectColumnValueLengthsToBeBetween", {"column": name, "min_value": min_chars}))
    checks += [
        Check(f"{name}_too_long", "ExpectColumnValueLengthsToBeBetween", {"column": name, "max_value": max_chars}),
        Check(f"{name}_control_characters", "ExpectColumnValuesToNotMatchRegex", {"column": name, "regex": CONTROL_CHARACTERS}),
    ]
    return checks


def build_checks(cfg: ValidateConfig) -> list[Check]:
    checks = [
        *_field_checks("instruction", True, cfg.min_instruction_chars, cfg.max_instruction_chars),
        *_field_checks("input", False, 0, cfg.max_input_chars),
        *_field_checks("output", True, cfg.min_output_chars, cfg.max_output_chars),
        Check("too_many_tokens", "ExpectColumnValuesToBeBetween", {"column": "tokens", "max_value": cfg.max_tokens}),
    ]
    if cfg.drop_exact_duplicates:
        # duplicate_of is set only on the second and later copies, so the first one is kept.
        checks.append(Check("exact_duplicate", "ExpectColumnValuesToBeNull", {"column": "duplicate_of"}))
    return checks

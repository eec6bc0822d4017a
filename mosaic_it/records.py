"""The one definition of how a record's instruction and optional input read as a single text.

Training prompts, mosaic instructions, token counts in validation and evaluation references all
use it, so a record is counted and shown the same way everywhere.
"""
from __future__ import annotations

from typing import Any


def instruction_text(record: dict[str, Any]) -> str:
    """The instruction, with the record's input (if any) on the line below it."""
    extra = record.get("input") or ""
    return f"{record['instruction']}\n{extra}" if extra else record["instruction"]

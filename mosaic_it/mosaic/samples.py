"""Reading a samples file written by `augment`, for `verify` and `stats`.

Each line is checked for the shape augment writes (strict types: no bool for an int, no number for
a string) before anything looks inside it, so a foreign or hand-edited file stops with its file,
line and the first field that is wrong instead of a traceback. A file without samples is an error:
"all 0 samples verified" would be a silent wrong result.
"""
from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import iter_jsonl_lines


class LayoutShape(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    numbering: str | None
    begin_tag: str
    end_tag: str
    instruction_separator: str
    response_separator: str
    meta_position: Literal["before", "after"]
    meta_separator: str

    @field_validator("numbering")
    @classmethod
    def _only_position_field(cls, value: str | None) -> str | None:
        # The numbering is a format string filled with the position: allow `{i}` and nothing else.
        if value is not None:
            fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
            if any(f != ("i", "", None) for f in fields):
                raise ValueError("numbering may only use the placeholder {i}")
        return value


class RuleArgs(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    # Absent when the rule takes none; never null.
    sequence: list[int] = Field(default=None)  # type: ignore[assignment]
    numbers: list[int] = Field(default=None)  # type: ignore[assignment]
    k: int = Field(default=None, ge=1)  # type: ignore[assignment]


class MetaShape(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    source_ids: list[int] = Field(min_length=1)
    strategy: Literal["format", "order", "mask"]
    rule: str | None
    response_ids: list[int]
    epoch: int = Field(ge=0)
    rule_args: RuleArgs
    format: LayoutShape
    meta_instruction: str
    max_tokens: int | None = Field(None, ge=1)


class SampleShape(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    instruction: str
    input: str = ""
    output: str
    count: int = Field(ge=1)
    mosaic: MetaShape


def read_samples(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, sample) for every sample; InputFileError on the first malformed one or if none."""
    seen = False
    for line, row in iter_jsonl_lines(path):
        try:
            SampleShape.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "sample"
            raise InputFileError(path, f"not a mosaic sample: {where}: {first['msg']}", line) from None
        seen = True
        yield line, row
    if not seen:
        raise InputFileError(path, "holds no mosaic samples")

"""Field types shared by several params.yaml sections."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

# Seeds feed numpy and torch generators, which take 0 <= seed < 2**32.
Seed = Annotated[int, Field(ge=0, lt=2**32)]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


def _plain_name(value: str) -> str:
    if not _PLAIN_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a plain name (letters, digits, '_', '-', '.'; "
                         "not a path, not starting with '.')")
    return value


# An arm names a folder under an output folder: one plain name, never a path, never "." or "..".
ArmName = Annotated[str, AfterValidator(_plain_name)]

"""Field types shared by several params.yaml sections."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

# Seeds feed numpy and torch generators, which take 0 <= seed < 2**32.
Seed = Annotated[int, Field(ge=0, lt=2**32)]

# An arm names a folder under an output folder: one plain name, never a path, never "." or "..".
ArmName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$", max_length=100)]

"""Options every command shares: which params.yaml to read and `section.key=value` overrides."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read defaults from.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-S", help="Override a parameter, e.g. -S augment.epochs=2 (repeatable)."),
]

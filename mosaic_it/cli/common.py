"""What every command shares: which params.yaml to read, `section.key=value` overrides, and
merging the options given on the command line into a config section."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError

from mosaic_it.errors import ConfigError

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read defaults from.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-S", help="Override a parameter, e.g. -S augment.epochs=2 (repeatable)."),
]


def with_options(section: BaseModel, **options: Any) -> Any:
    """The params.yaml section with the options the user gave on the command line (None: not given).

    Re-validated, so a command-line value is checked exactly as a params.yaml value would be.
    """
    given = {k: str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None}
    try:
        return section.model_validate({**section.model_dump(), **given})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None

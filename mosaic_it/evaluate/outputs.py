"""One arm's evaluation folder: inside evaluate.output_dir, holding none of its inputs, one writer at a time."""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mosaic_it.config.evaluate import EvaluateConfig
from mosaic_it.errors import ConfigError
from mosaic_it.locks import output_lock
from mosaic_it.paths import is_within, refuse_overwriting_inputs

Result = TypeVar("Result")


def arm_dir(cfg: EvaluateConfig) -> Path:
    """<output_dir>/<arm>; the arm is a plain name (config.types.ArmName), checked again here
    because a symlink named like the arm could still lead elsewhere."""
    root = Path(cfg.output_dir)
    out = root / cfg.arm
    if not is_within(out, root) or out.resolve() == root.resolve():
        raise ConfigError(f"evaluate.arm={cfg.arm!r}: results must stay inside evaluate.output_dir {root}")
    return out


def guarded(run: Callable[..., Result]) -> Callable[..., Result]:
    """Wrap run(cfg, ...): refuse inputs inside the arm's folder and hold its lock while running."""
    @functools.wraps(run)
    def wrapper(cfg: EvaluateConfig, *args: Any, **kwargs: Any) -> Result:
        out = arm_dir(cfg)
        refuse_overwriting_inputs("evaluate", [cfg.model, cfg.heldout, cfg.ifeval_path, cfg.pairwise_dir], [], [out])
        with output_lock(out, "evaluation"):
            return run(cfg, *args, **kwargs)

    return wrapper

"""One typed configuration, parsed from params.yaml, shared by the CLI, DVC stages and Prefect flows.

Each params.yaml section maps to one model in its own module, so that a DVC stage can depend on
exactly its own section.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mosaic_it.config.augment import AugmentConfig
from mosaic_it.config.data import SplitConfig, ValidateConfig
from mosaic_it.config.evaluate import CompareConfig, EvaluateConfig
from mosaic_it.config.study import StudyConfig
from mosaic_it.config.tracking import CostConfig, TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # "validate" would shadow a pydantic method, so that section is stored as `validation`.
    validation: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    split: SplitConfig = Field(default_factory=SplitConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    study: StudyConfig = Field(default_factory=StudyConfig)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides (values parsed as YAML), as `dvc exp run -S` does."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        dotted, value = item.split("=", 1)
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = yaml.safe_load(value)
    return raw


def load_params(path: str | Path = DEFAULT_PARAMS, overrides: list[str] | None = None) -> Params:
    path = Path(path)
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise ConfigError(f"{path}:{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    raw = apply_overrides(raw, overrides or [])
    try:
        return Params(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None

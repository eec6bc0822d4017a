"""One typed configuration, parsed from params.yaml, shared by the CLI, DVC stages and Prefect flows.

Each params.yaml section maps to one model in its own module, so that a DVC stage can depend on
exactly its own section.
"""
from __future__ import annotations

import re
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


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 floats: `learning_rate: 2e-4` is a number (PyYAML alone reads a string,
    which strict validation would then refuse)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
               r"|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


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
        dotted, _, value = item.partition("=")
        keys = dotted.split(".")
        if not _ or not all(k.strip() for k in keys):
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        node = raw
        for depth, key in enumerate(keys[:-1]):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(keys[:depth + 1])} is a value, not a section")
        try:
            node[keys[-1]] = _yaml(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    return raw


def read_params_file(path: Path) -> dict[str, Any]:
    """The mapping in a params file; a missing file is an error unless it is the default params.yaml."""
    if not path.exists() and path == DEFAULT_PARAMS:
        return {}  # outside a project folder: the built-in defaults
    try:
        raw = _yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a params file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"{path}:{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections (validate:, augment:, ...)")
    return raw


def load_params(path: str | Path = DEFAULT_PARAMS, overrides: list[str] | None = None) -> Params:
    path = Path(path)
    raw = apply_overrides(read_params_file(path), overrides or [])
    try:
        # Strict: `epochs: true` or `epochs: 2.5` is an error, not 1 or 2.
        return Params.model_validate(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None

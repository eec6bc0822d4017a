"""What both flows share: parameters from params.yaml with overrides, the parent MLflow run, and
how one stage's outputs become the next stage's inputs."""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from mosaic_it import tracking as track
from mosaic_it.config import Params, load_params
from mosaic_it.config.evaluate import CompareConfig, EvaluateConfig
from mosaic_it.config.train import TrainConfig

Overrides = dict[str, Any] | list[str] | None


def override_list(overrides: Overrides) -> list[str]:
    """`{"augment.epochs": 2}` or `["augment.epochs=2"]` -> `["augment.epochs=2"]` (values as YAML)."""
    if not overrides:
        return []
    if isinstance(overrides, dict):
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    return list(overrides)


def resolve_params(params_path: str, overrides: Overrides) -> Params:
    return load_params(params_path, override_list(overrides))


def flow_run_tags() -> dict[str, str]:
    """Which Prefect flow run an MLflow run belongs to (with its UI address when known)."""
    tags = {"prefect.flow_run_id": str(flow_run.id or ""), "prefect.flow_run_name": str(flow_run.name or "")}
    if flow_run.ui_url:
        tags["prefect.flow_run_url"] = flow_run.ui_url
    return tags


@contextlib.contextmanager
def parent_run(name: str, params: Params, flow_parameters: dict[str, Any]) -> Iterator[Any]:
    """The MLflow run of one flow run; every stage run inside it nests under it."""
    with track.stage_run(name, params.tracking, params={"flow": flow_parameters}, tags=flow_run_tags()) as run:
        yield run


# What a parent run shows of its children, per arm (`<arm>/<key>`), so flow runs line up in one table.
PARENT_HEADLINE = ("train/final_loss", "cost/usd", "heldout/loss", "mosaic_following/format",
                   "mosaic_following/order_kendall_tau", "mosaic_following/mask", "ifeval/prompt_strict",
                   "ifeval/instruction_loose", "cost/eval_usd")


def carry_up(run: Any, arm: str, metrics: dict[str, float]) -> None:
    """Log a child stage's headline numbers on the flow's parent run (the active run)."""
    if run is not None:
        track.log_metrics({f"{arm}/{k}": metrics[k] for k in PARENT_HEADLINE if k in metrics})


def train_arm(params: Params, arm: str, data: str | Path) -> TrainConfig:
    return params.train.model_copy(update={"arm": arm, "data": str(data)})


def evaluate_trained(params: Params, trained_dir: str | Path, arm: str) -> EvaluateConfig:
    """Evaluate what was just trained: the arm's training output, results under the same arm name."""
    return params.evaluate.model_copy(
        update={"model": str(trained_dir), "arm": arm, "prompt_format": params.train.prompt_format})


def compare_arms(params: Params) -> CompareConfig:
    """The comparison reads the folders this flow's train and evaluate stages wrote."""
    return params.compare.model_copy(
        update={"train_dir": params.train.output_dir, "evaluate_dir": params.evaluate.output_dir})

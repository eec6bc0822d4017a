"""What one study cell is: the configs that train and evaluate an arm for a seed, derived from
params.yaml so that the CLI, DVC and Prefect run exactly the same cell."""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from mosaic_it.config import Params
from mosaic_it.config.augment import AugmentConfig
from mosaic_it.config.evaluate import EvaluateConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.study.cells import CellDirs
from mosaic_it.study.layout import StudyLayout

# Train settings that change where or how often things are logged or saved, not what is learned.
NOT_LEARNED = {"save_every", "keep_checkpoints", "resume", "log_every", "sample_prompts",
               "sample_max_new_tokens", "output_dir"}


def layout(params: Params) -> StudyLayout:
    return StudyLayout(Path(params.study.output_dir))


def cell_dirs(params: Params, seed: int, arm: str) -> CellDirs:
    where = layout(params)
    return CellDirs(where.train_root(seed) / arm, where.evaluate_root(seed) / arm)


def augment_config(params: Params, seed: int) -> AugmentConfig:
    where = layout(params)
    return params.augment.model_copy(update={
        "input": str(where.records), "output": str(where.mosaic(seed)),
        "stats_dir": str(where.augment_stats(seed)), "epochs": params.study.mosaic_epochs, "seed": seed})


def train_data(params: Params, seed: int, arm: str) -> Path:
    where = layout(params)
    return where.mosaic(seed) if arm == "mosaic" else where.records


def train_config(params: Params, seed: int, arm: str, epochs: float) -> TrainConfig:
    """The arm's training: the train section, with the study's seed, data and number of passes."""
    return params.train.model_copy(update={
        "arm": arm, "data": str(train_data(params, seed, arm)), "output_dir": str(layout(params).train_root(seed)),
        "seed": seed, "epochs": epochs, "max_steps": None, "max_records": None})


def evaluate_config(params: Params, seed: int, arm: str) -> EvaluateConfig:
    """The same evaluation for every cell: only the model differs, so arms pair per item."""
    sizes = params.study.evaluation
    generation = params.evaluate.generation
    if sizes.max_new_tokens is not None:
        generation = generation.model_copy(update={"max_new_tokens": sizes.max_new_tokens})
    update = {
        "model": str(cell_dirs(params, seed, arm).train_dir), "arm": arm,
        "output_dir": str(layout(params).evaluate_root(seed)), "prompt_format": params.train.prompt_format,
        "heldout_limit": sizes.heldout_limit, "mosaic_per_rule": sizes.mosaic_per_rule,
        "ifeval_limit": sizes.ifeval_limit, "pairwise_limit": sizes.pairwise_limit, "generation": generation}
    if sizes.mosaic_max_new_tokens is not None:
        update["mosaic_max_new_tokens"] = sizes.mosaic_max_new_tokens
    return params.evaluate.model_copy(update=update)


def settings(cfg: BaseModel, exclude: set[str] | None = None) -> str:
    """A config as a fingerprint. Values left at their defaults are not part of it, so a release
    that adds a setting does not invalidate finished cells; a value that is set always counts."""
    return json.dumps(cfg.model_dump(exclude=exclude, exclude_defaults=True), sort_keys=True, default=str)


def learned_settings(cfg: TrainConfig) -> str:
    return settings(cfg, NOT_LEARNED)

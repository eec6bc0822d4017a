"""After a comparison, point an alias (e.g. `candidate`) at the registered version of the arm that
won on one metric, so `models:/mosaic-it-<arm>@candidate` names the model to try next."""
from __future__ import annotations

import logging
from pathlib import Path

from mosaic_it.config.evaluate import CompareConfig
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.mlmodel.log import registered_name

logger = logging.getLogger(__name__)


def winner(cfg: CompareConfig, base: dict[str, float], cand: dict[str, float]) -> str | None:
    """The arm with the better value of `compare.promote.metric` (the baseline keeps a tie); None
    when either arm lacks it."""
    metric = cfg.promote.metric
    if metric not in base or metric not in cand:
        return None
    better = cand[metric] > base[metric] if cfg.promote.higher_is_better else cand[metric] < base[metric]
    return cfg.candidate if better else cfg.baseline


def promote_winner(cfg: CompareConfig, tracking: TrackingConfig, base: dict[str, float],
                   cand: dict[str, float]) -> tuple[str, str, str] | None:
    """Set `compare.promote.alias` on the winning arm's registered version: the one its training
    output came from (by the train run in lineage.json), else the newest. Returns (name, version, arm)."""
    import mlflow

    alias = cfg.promote.alias
    arm = winner(cfg, base, cand)
    name = registered_name(tracking, arm) if arm else None
    if not (tracking.enabled and alias and name):
        return None
    from mosaic_it.lineage import read_lineage

    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    run_id = read_lineage(Path(cfg.train_dir) / arm).get("run_id")
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as exc:  # a store without a registry (a plain ./mlruns folder)
        logger.warning("compare: cannot alias %s as %s: %s", name, alias, str(exc).splitlines()[0])
        return None
    mine = [v for v in versions if v.run_id == run_id] or versions
    if not mine:
        logger.warning("compare: no registered version of %s to alias as %s (was tracking.log_model off?)",
                       name, alias)
        return None
    version = max(mine, key=lambda v: int(v.version))
    client.set_registered_model_alias(name, alias, version.version)
    logger.info("compare: %s won on %s; alias %s -> %s version %s", arm, cfg.promote.metric, alias, name,
                version.version)
    return name, str(version.version), arm

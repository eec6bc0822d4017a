"""`run_evaluation`: load one arm's model, run the configured evals, write metrics and plots."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mosaic_it.config.evaluate import EvaluateConfig
from mosaic_it.config.tracking import CostConfig, TrackingConfig
from mosaic_it.evaluate.backend import make_generator
from mosaic_it.evaluate.context import EvalContext
from mosaic_it.evaluate.model import load_model
from mosaic_it.evaluate.plots import bar_chart
from mosaic_it.evaluate.outputs import guarded
from mosaic_it.evaluate.registry import EVALS
from mosaic_it.jsonl import write_json
from mosaic_it.mlmodel.load import linked_model

# The few numbers worth a glance; each is drawn only when its eval ran.
HEADLINE = (
    "mosaic_following/format", "mosaic_following/count", "mosaic_following/order_kendall_tau",
    "mosaic_following/mask", "ifeval/prompt_strict", "ifeval/prompt_loose",
    "ifeval/instruction_strict", "ifeval/instruction_loose",
)


@dataclass(frozen=True)
class EvalResult:
    arm: str
    metrics: dict[str, float]
    metrics_path: Path
    out_dir: Path
    run_id: str | None = None


def _evaluate(cfg: EvaluateConfig, out_dir: Path) -> tuple[dict[str, float], list[Path]]:
    model, tokenizer = load_model(cfg.model, cfg.device, cfg.attn_implementation)
    ctx = EvalContext(cfg, model, tokenizer, out_dir, generator=make_generator(cfg, model, tokenizer))
    metrics: dict[str, float] = {}
    names = list(dict.fromkeys(cfg.evals))
    started = time.perf_counter()
    ctx.prefetch([EVALS[n].prompts(ctx) for n in names if EVALS[n].prompts is not None])
    if ctx.prefetched:  # those evals' own seconds below then leave their generation out
        metrics["generation/seconds"] = time.perf_counter() - started
    for name in names:
        started = time.perf_counter()
        metrics.update({f"{name}/{key}": float(value) for key, value in EVALS[name].run(ctx).items()})
        metrics[f"{name}/seconds"] = time.perf_counter() - started
    shown = [k for k in HEADLINE if k in metrics]
    if shown:
        ctx.artifacts.append(bar_chart(ctx.path("plots", "summary.png"), shown,
                                       {cfg.arm: [metrics[k] for k in shown]}, f"Evaluation of {cfg.arm}"))
    return metrics, ctx.artifacts


def consumed(cfg: EvaluateConfig) -> tuple[dict[str, object], dict[str, str]]:
    """Params and tags naming what this evaluation reads: the model (id and content hash), the
    held-out file's md5 and, for a training output, the train run that produced it."""
    from mosaic_it import tracking as mlflow_tracking
    from mosaic_it.lineage import base_model, read_lineage, train_lineage_params

    folder = Path(cfg.model) if cfg.model else None
    weights = folder / "model" if folder is not None and (folder / "model").is_dir() else folder
    model = base_model(str(weights) if weights is not None else None)
    trained = read_lineage(folder)
    params: dict[str, object] = {"model_id": model["id"], "model_sha256": model["sha256"],
                                 **train_lineage_params(trained)}
    if Path(cfg.heldout).is_file():
        params["heldout_md5"] = mlflow_tracking.file_md5(cfg.heldout)
    tags = {"mosaic_it.arm": cfg.arm, "mosaic_it.model_sha256": str(model["sha256"])}
    if trained.get("run_id"):
        tags["mosaic_it.train_run_id"] = str(trained["run_id"])
    return params, tags


@guarded  # arm folder inside evaluate.output_dir, no input inside it, one evaluation at a time
def run_evaluation(cfg: EvaluateConfig, tracking: TrackingConfig | None = None,
                   cost: CostConfig | None = None) -> EvalResult:
    """Evaluate one arm; metrics.json also holds what the evaluation itself cost (`cost/eval_*`,
    named apart from the training cost that compare reads beside it)."""
    from mosaic_it import tracking as mlflow_tracking

    started = time.perf_counter()
    out_dir = Path(cfg.output_dir) / cfg.arm
    out_dir.mkdir(parents=True, exist_ok=True)
    tracking = tracking or TrackingConfig(enabled=False)
    cost = cost or CostConfig()
    lineage, tags = consumed(cfg)
    params = {"evaluate": cfg.model_dump(), "cost": {"usd_per_device_hour": cost.usd_per_device_hour},
              "consumed": lineage}
    with mlflow_tracking.stage_run(f"evaluate:{cfg.arm}", tracking, params=params, tags=tags,
                                   system_metrics=True) as run:
        metrics, artifacts = _evaluate(cfg, out_dir)
        device_seconds = time.perf_counter() - started  # one device: model load and every eval
        metrics["cost/eval_device_seconds"] = device_seconds
        metrics["cost/eval_usd"] = device_seconds / 3600 * cost.usd_per_device_hour
        metrics_path = out_dir / "metrics.json"
        write_json(metrics_path, metrics)
        if run is not None:
            if "heldout" in cfg.evals or "mosaic_following" in cfg.evals:
                mlflow_tracking.log_jsonl_dataset(cfg.heldout, "heldout", context="evaluation")
            with linked_model(cfg.model):  # metrics on the evaluated model's MLflow page too
                mlflow_tracking.log_metrics(metrics)
            mlflow_tracking.log_artifacts(metrics_path)
            for path in artifacts:
                mlflow_tracking.log_artifacts(path, str(path.parent.relative_to(out_dir)))
    return EvalResult(cfg.arm, metrics, metrics_path, out_dir, run.info.run_id if run is not None else None)

"""`mosaic-it evaluate` (one arm) and `mosaic-it compare` (two arms side by side)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mosaic_it.cli.common import ParamsOption, SetOption, with_options
from mosaic_it.config import DEFAULT_PARAMS, load_params

HEADLINE = ("heldout/loss", "heldout/perplexity", "mosaic_following/format", "mosaic_following/count",
            "mosaic_following/order_kendall_tau", "mosaic_following/mask", "ifeval/prompt_strict",
            "ifeval/instruction_loose")


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        model: Annotated[str | None, typer.Option("--model", help="Model or adapter dir (or a runs/train/<arm> dir); default: evaluate.model.", show_default=False)] = None,
        arm: Annotated[str | None, typer.Option("--arm", help="Arm name for the outputs; default: evaluate.arm.", show_default=False)] = None,
        evals: Annotated[list[str] | None, typer.Option("--eval", help="Eval to run (repeatable); default: evaluate.evals.", show_default=False)] = None,
        params: ParamsOption = DEFAULT_PARAMS,
        overrides: SetOption = None,
    ) -> None:
        """Run held-out loss, mosaic following, IFEval and pairwise generation for one model."""
        from mosaic_it.evaluate.run import run_evaluation

        loaded = load_params(params, overrides)
        cfg = with_options(loaded.evaluate, model=model, arm=arm, evals=evals)
        result = run_evaluation(cfg, loaded.tracking, loaded.cost)
        shown = ", ".join(f"{k} {result.metrics[k]:.3f}" for k in HEADLINE if k in result.metrics)
        typer.echo(f"{cfg.arm}: {shown or 'no headline metric'} -> {result.metrics_path}")

    @app.command("compare")
    def compare(
        baseline: Annotated[str | None, typer.Option("--baseline", help="Baseline arm; default: compare.baseline.", show_default=False)] = None,
        candidate: Annotated[str | None, typer.Option("--candidate", help="Candidate arm; default: compare.candidate.", show_default=False)] = None,
        params: ParamsOption = DEFAULT_PARAMS,
        overrides: SetOption = None,
    ) -> None:
        """Report two arms side by side on every metric and on cost; judge pairwise if a judge is set."""
        from mosaic_it.evaluate.compare import run_compare

        loaded = load_params(params, overrides)
        cfg = with_options(loaded.compare, baseline=baseline, candidate=candidate)
        paths = run_compare(cfg, loaded.tracking)
        typer.echo(f"{cfg.candidate} vs {cfg.baseline}: report {paths.report}")

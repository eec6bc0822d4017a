"""`mosaic-it train`: fine-tune one arm (baseline records or mosaic samples), defaults from params.yaml."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mosaic_it.cli.common import ParamsOption, SetOption, with_options
from mosaic_it.config import DEFAULT_PARAMS, load_params


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        data: Annotated[Path | None, typer.Option("--data", help="Training JSONL; default: train.data.", show_default=False)] = None,
        arm: Annotated[str | None, typer.Option("--arm", help="Run name, e.g. baseline or mosaic; default: train.arm.", show_default=False)] = None,
        params: ParamsOption = DEFAULT_PARAMS,
        overrides: SetOption = None,
    ) -> None:
        """Fine-tune (LoRA or full) on records or mosaic samples; log cost and metrics to MLflow."""
        from mosaic_it.train.run import run_training

        loaded = load_params(params, overrides)
        cfg = with_options(loaded.train, data=data, arm=arm)
        result = run_training(cfg, loaded.tracking, loaded.cost)
        m = result.metrics
        typer.echo(
            f"{cfg.arm}: {int(m['train/steps'])} steps, final loss {m['train/final_loss']:.4f}, "
            f"{m['cost/stage_seconds']:.1f} s ({m['cost/loop_seconds']:.1f} s training), "
            f"{int(m['tokens/real'])} real / {int(m['tokens/padded'])} computed tokens, "
            f"${m['cost/usd']:.4f} -> {result.output_dir}"
        )

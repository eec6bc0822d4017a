"""`mosaic-it validate` and `mosaic-it split`: thin wrappers over mosaic_it.data, defaults from params.yaml."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mosaic_it.cli.common import ParamsOption, SetOption, with_options
from mosaic_it.config import DEFAULT_PARAMS, load_params

InputArgument = Annotated[
    Path | None,
    typer.Argument(metavar="INPUT", help="Input file; default: the section's `input` in params.yaml.", show_default=False),
]
OutputDirOption = Annotated[
    Path | None, typer.Option("--output-dir", "-o", help="Output folder; default: the section's `output_dir`.", show_default=False)
]


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        input_path: InputArgument = None,
        output_dir: OutputDirOption = None,
        params: ParamsOption = DEFAULT_PARAMS,
        overrides: SetOption = None,
    ) -> None:
        """Check every record with Great Expectations; write valid.jsonl, rejected.jsonl, report.json and data docs."""
        from mosaic_it.data.validate import RejectedShareError, run_validation

        cfg = with_options(load_params(params, overrides).validation, input=input_path, output_dir=output_dir)
        try:
            report = run_validation(cfg, progress=True)
        except RejectedShareError as exc:
            typer.echo(exc.report.summary(), err=True)
            raise
        typer.echo(report.summary())

    @app.command("split")
    def split(
        input_path: InputArgument = None,
        output_dir: OutputDirOption = None,
        params: ParamsOption = DEFAULT_PARAMS,
        overrides: SetOption = None,
    ) -> None:
        """Set a deterministic held-out share of the validated records aside before augmentation."""
        from mosaic_it.data.split import run_split

        cfg = with_options(load_params(params, overrides).split, input=input_path, output_dir=output_dir)
        typer.echo(run_split(cfg).summary())

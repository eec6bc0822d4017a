"""`mosaic-it study`: baseline vs Mosaic-IT over seeds, resumable, ending in a report with CIs.

`mosaic-it study` runs every step (finished ones are skipped); `--seed`/`--arm` narrow it to some
cells and `--no-report` leaves the report out (how DVC runs one cell per stage); `--report-only`
writes the report from cells already evaluated.
"""
from __future__ import annotations

from typing import Annotated

import typer

from mosaic_it.cli.common import ParamsOption, SetOption
from mosaic_it.config import DEFAULT_PARAMS, load_params


def register(app: typer.Typer) -> None:
    @app.command("study")
    def study(
        seeds: Annotated[list[int] | None, typer.Option("--seed", help="Only this seed (repeatable); default: study.seeds.", show_default=False)] = None,
        arms: Annotated[list[str] | None, typer.Option("--arm", help="Only this arm (repeatable); default: study.arms.", show_default=False)] = None,
        no_report: Annotated[bool, typer.Option("--no-report", help="Run the cells, leave the report out.")] = False,
        report_only: Annotated[bool, typer.Option("--report-only", help="Only write the report from evaluated cells.")] = False,
        records_only: Annotated[bool, typer.Option("--records-only", help="Only copy the study's source records.")] = False,
        augment_only: Annotated[bool, typer.Option("--augment-only", help="Only build the mosaic samples of the chosen seeds.")] = False,
        params: ParamsOption = DEFAULT_PARAMS,
        overrides: SetOption = None,
    ) -> None:
        """Train and evaluate every (seed, arm) cell, then report each difference with its CI and verdict."""
        from mosaic_it.study import run as study_run
        from mosaic_it.study.tracking import study_run as parent_run

        loaded = load_params(params, overrides)
        if report_only:
            with parent_run(loaded) as parent:
                summary = study_run.report(loaded)
                study_run.log_report(parent, summary)
            typer.echo(f"study report: {summary.report}")
            return
        if records_only or augment_only:
            study_run.prepare_records(loaded)
            if augment_only:
                for seed in seeds or loaded.study.seeds:
                    study_run.augment_seed(loaded, seed)
            typer.echo(f"study data under {loaded.study.output_dir}")
            return
        steps, summary = study_run.run_study(loaded, seeds, arms, with_report=not no_report)
        ran = sum(not s.skipped for s in steps)
        typer.echo(f"study: {ran} step(s) run, {len(steps) - ran} already done"
                   + (f"; report {summary.report}" if summary is not None else ""))

"""`mosaic-it augment`, `verify` and `stats`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mosaic_it.cli.common import ParamsOption, SetOption, with_options
from mosaic_it.config import load_params
from mosaic_it.config.augment import StrategyMix, WrapMode
from mosaic_it.errors import MosaicItError


def augment(
    input: Annotated[Optional[Path], typer.Argument(help="Records to mosaic (default: augment.input).")] = None,
    output: Annotated[Optional[Path], typer.Option(help="Samples JSONL (default: augment.output).")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1)] = None,
    wrap_mode: Annotated[Optional[WrapMode], typer.Option(help="Instructions-per-sample distribution.")] = None,
    max_instructions: Annotated[Optional[int], typer.Option(min=1, help="K: most instructions per sample.")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(min=16, help="Token budget per sample.")] = None,
    strategy: Annotated[Optional[StrategyMix], typer.Option(help="format, order, mask or both.")] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Training tokenizer name or path (default: embedded).")] = None,
    stats_dir: Annotated[Optional[Path], typer.Option(help="Where to write stats.json/png (default: augment.stats_dir).")] = None,
    params: ParamsOption = Path("params.yaml"),
    set_: SetOption = None,
) -> None:
    """Build Mosaic-IT samples from INPUT and write them with their provenance."""
    from mosaic_it.mosaic.augment import augment_with_stats

    cfg = with_options(load_params(params, set_).augment, input=input, output=output, epochs=epochs,
                       wrap_mode=wrap_mode, max_instructions=max_instructions, max_tokens=max_tokens,
                       strategy=strategy, seed=seed, tokenizer=tokenizer, stats_dir=stats_dir)
    report, stats = augment_with_stats(cfg)
    typer.echo(
        f"wrote {report.samples} samples from {report.records} records over {report.epochs} epoch(s) to {cfg.output}; "
        f"{report.skipped_too_long} record(s) skipped as longer than {cfg.max_tokens} tokens; "
        f"mean {stats.get('instructions_per_sample', {}).get('mean', 0)} instructions/sample; stats in {cfg.stats_dir}"
    )


def verify(
    samples: Annotated[Path, typer.Argument(help="Samples JSONL written by augment.")],
    source: Annotated[Path, typer.Option("--source", help="The file that was given to augment.")],
    max_tokens: Annotated[Optional[int], typer.Option(help="Budget to check (default: the one each sample records).")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer (default: augment.tokenizer).")] = None,
    params: ParamsOption = Path("params.yaml"),
    set_: SetOption = None,
) -> None:
    """Check every sample against its provenance and rule; exit 1 on any violation."""
    from mosaic_it.mosaic.verify import verify_file

    cfg = load_params(params, set_).augment
    for path in (samples, source):
        if not path.exists():
            raise MosaicItError(f"{path}: no such file")
    report = verify_file(samples, source, tokenizer or cfg.tokenizer, max_tokens)
    for line in report.violations:
        typer.echo(line, err=True)
    if not report.ok:
        typer.echo(f"{report.violation_count} violation(s) in {report.samples} samples", err=True)
        raise typer.Exit(1)
    typer.echo(f"all {report.samples} samples verified")


def stats(
    samples: Annotated[Path, typer.Argument(help="Samples JSONL written by augment.")],
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="Where stats.json and stats.png go (default: a stats folder beside SAMPLES).")] = None,
) -> None:
    """Counts per strategy and rule, histograms of instructions and tokens per sample (JSON + PNG).

    Token counts are those augment recorded (exact, checked by `verify`); nothing is re-tokenized."""
    from mosaic_it.mosaic.stats import run_stats

    if not samples.exists():
        raise MosaicItError(f"{samples}: no such file")
    out_dir = out_dir or samples.parent / "stats"
    result = run_stats(samples, out_dir)
    typer.echo(f"{result['samples']} samples; stats written to {out_dir / 'stats.json'} and {out_dir / 'stats.png'}")


def register(app: typer.Typer) -> None:
    app.command()(augment)
    app.command()(verify)
    app.command()(stats)

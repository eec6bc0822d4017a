"""Mosaic augmentation over a whole data set: load the records, pack them into samples
(mosaic_it.mosaic.packer), and stream the samples with their provenance to JSONL, with stats."""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mosaic_it import collector
from mosaic_it.atomic import atomic_open
from mosaic_it.config.augment import AugmentConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.models.tokenizer import load_counting_tokenizer
from mosaic_it.paths import refuse_overwriting_inputs
from mosaic_it.mosaic.budget import TokenCounter
from mosaic_it.mosaic.finisher import FINISH_BESIDE_AT, Planned, write_finished, write_lines
from mosaic_it.mosaic.core_watch import CoreWatch
from mosaic_it.mosaic.forked import Standby, can_fork
from mosaic_it.mosaic.packer import AugmentReport, Packer
from mosaic_it.mosaic.sources import load_source_records
from mosaic_it.mosaic.stats import StatsTally


def mosaic_samples(records: Sequence[dict], cfg: AugmentConfig, tokenizer: Any, report: AugmentReport,
                   show_progress: bool = True) -> Iterator[dict]:
    packer = Packer(records, cfg, TokenCounter(tokenizer))
    return map(packer.finish, packer.planned(report, show_progress))


def _at_least_one(samples: Iterator[Planned], cfg: AugmentConfig, report: AugmentReport) -> Iterator[Planned]:
    """The samples; none at all raises, so the writer publishes nothing and the old output stays."""
    any_sample = False
    for sample in samples:
        any_sample = True
        yield sample
    if not any_sample:
        raise MosaicItError(f"{cfg.input}: no mosaic sample fits augment.max_tokens={cfg.max_tokens} "
                            f"(each of the {report.records} records alone exceeds it); nothing written")


def write_samples(path: str | Path, samples: Iterator[dict]) -> int:
    """write_jsonl's file, 3-4x faster: for samples (str, int, None, lists, dicts) orjson writes
    the bytes of mosaic_it.jsonl.dumps, UTF-8 and compact (tests/test_augment_json.py)."""
    with atomic_open(path, "wb") as handle:
        return write_lines(handle, samples)


def run_augment(cfg: AugmentConfig, show_progress: bool = True, tally: StatsTally | None = None) -> AugmentReport:
    """Write the samples; with `tally`, also tally them for stats.json as they are written."""
    stats = Path(cfg.stats_dir)
    refuse_overwriting_inputs("augment", [cfg.input, cfg.tokenizer],
                              [cfg.output, stats / "stats.json", stats / "stats.png"])
    started = time.perf_counter()
    watch = CoreWatch()  # over loading and counting: whether another job keeps a core busy
    with collector.paused():
        records = load_source_records(cfg.input)
        tokenizer = load_counting_tokenizer(cfg.tokenizer)
        report = AugmentReport(input=cfg.input, output=cfg.output, records=len(records))
        packer = Packer(records, cfg, TokenCounter(tokenizer))
        planned = _at_least_one(packer.planned(report, show_progress), cfg, report)
        packer.defer = cfg.epochs * len(records) >= FINISH_BESIDE_AT and can_fork() and watch.core_free()
        report.samples = write_finished(cfg.output, planned, packer.finish, tally, packer.defer, packer.counted)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def augment_with_stats(cfg: AugmentConfig, show_progress: bool = True) -> tuple[AugmentReport, dict[str, Any]]:
    """run_augment, then stats.json and stats.png from the samples as they were written (the
    output file is not read back): what the CLI, the Prefect task and the study all run. The plot
    is drawn by a child forked now, which loads Pillow while this process packs."""
    from mosaic_it.mosaic.stats import write_stats
    from mosaic_it.mosaic.stats_png import plot_stats, plotting

    png = Path(cfg.stats_dir) / "stats.png"
    plotter = Standby(plotting, lambda stats: plot_stats(stats, png))
    try:
        tally = StatsTally()
        report = run_augment(cfg, show_progress, tally)
        return report, write_stats(tally.result(), cfg.stats_dir, plotter.finish)
    finally:
        plotter.cancel()

"""Summary statistics of a mosaic file: strategy and rule mix, instructions and tokens per sample.

Token counts are the exact ones augment recorded per sample (`mosaic.tokens`, which `verify`
checks); nothing is tokenized here.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import write_json
from mosaic_it.paths import refuse_overwriting_inputs
from mosaic_it.mosaic.samples import read_samples

TOKEN_BINS = 20


def _histogram(values: np.ndarray, bins: int | np.ndarray) -> dict[str, list]:
    counts, edges = np.histogram(values, bins=bins)
    return {"counts": counts.tolist(), "edges": [round(float(e), 3) for e in edges]}


def recorded_tokens(samples_path: str | Path, line: int, meta: dict[str, Any]) -> int:
    tokens = meta.get("tokens")
    if type(tokens) is not int or tokens < 0:
        raise InputFileError(samples_path, "no exact token count (mosaic.tokens) recorded: "
                             "written by an older mosaic-it? Run augment again", line)
    return tokens


class StatsTally:
    """What stats.json summarizes, gathered one sample at a time: from a samples file, or from the
    samples as augment writes them (so augment never reads its output back)."""

    def __init__(self) -> None:
        self.strategies: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()
        self.per_epoch: Counter[int] = Counter()
        self.counts: list[int] = []
        self.tokens: list[int] = []

    def add(self, meta: dict[str, Any], count: int, tokens: int) -> None:
        self.strategies[meta["strategy"]] += 1
        self.rules[f"{meta['strategy']}:{meta['rule'] or '-'}"] += 1
        self.per_epoch[meta["epoch"]] += 1
        self.counts.append(count)
        self.tokens.append(tokens)

    def gathered(self) -> dict[str, Any]:
        """What has been tallied so far, as JSON: for merge() in another process."""
        return {"strategies": self.strategies, "rules": self.rules, "per_epoch": list(self.per_epoch.items()),
                "counts": self.counts, "tokens": self.tokens}

    def merge(self, gathered: dict[str, Any]) -> None:
        """Tally the samples another tally gathered (gathered()), after those tallied here."""
        self.strategies.update(gathered["strategies"])
        self.rules.update(gathered["rules"])
        self.per_epoch.update({epoch: samples for epoch, samples in gathered["per_epoch"]})
        self.counts += gathered["counts"]
        self.tokens += gathered["tokens"]

    def result(self) -> dict[str, Any]:
        if not self.counts:
            return {"samples": 0}
        count_array = np.array(self.counts)
        token_array = np.array(self.tokens)
        return {
            "samples": len(self.counts),
            "per_epoch": {str(k): v for k, v in sorted(self.per_epoch.items())},
            "per_strategy": dict(sorted(self.strategies.items())),
            "per_rule": dict(sorted(self.rules.items())),
            "instructions_per_sample": {
                "mean": round(float(count_array.mean()), 3),
                "max": int(count_array.max()),
                "histogram": _histogram(count_array, np.arange(1, count_array.max() + 2)),
            },
            "tokens_per_sample": {
                "mean": round(float(token_array.mean()), 1),
                "max": int(token_array.max()),
                "total": int(token_array.sum()),
                "histogram": _histogram(token_array, TOKEN_BINS),
            },
        }


def compute_stats(samples_path: str | Path) -> dict[str, Any]:
    tally = StatsTally()
    for line, sample in read_samples(samples_path):  # none at all is an error, not an empty plot
        meta = sample["mosaic"]
        tally.add(meta, sample["count"], recorded_tokens(samples_path, line, meta))
    return tally.result()


def run_stats(samples_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    out_dir = Path(out_dir)
    refuse_overwriting_inputs("stats", [samples_path], [out_dir / "stats.json", out_dir / "stats.png"])
    return write_stats(compute_stats(samples_path), out_dir)


def write_stats(stats: dict[str, Any], out_dir: str | Path,
                plotted: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """stats.json, and stats.png unless `plotted(stats)` says it drew the same plot there."""
    out_dir = Path(out_dir)
    write_json(out_dir / "stats.json", stats)
    if stats["samples"] and not (plotted and plotted(stats)):
        from mosaic_it.mosaic.stats_png import plot_stats

        plot_stats(stats, out_dir / "stats.png")
    return stats

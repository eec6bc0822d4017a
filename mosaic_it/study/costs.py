"""What each arm cost, per seed and over seeds, read from the cells' training metrics.

pad_to_max (the paper's FastChat baseline pads every sequence to train.max_length): its computed
tokens are `train/sequences` x `max_length` (from the cell's config.yaml), exact. Its device-hours
and dollars are an estimate: the run's own device-hours scaled by pad_to_max tokens / computed
tokens, i.e. time proportional to computed tokens. Attention grows faster than linearly with
length, so for long max_length this is a lower bound on the real pad_to_max time.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import yaml
from scipy import stats


ROWS = (  # (key, label, interval over seeds)
    ("train/steps", "optimizer steps", False),
    ("train/sequences", "sequences trained", False),
    ("tokens/real", "real tokens", False),
    ("tokens/padded", "computed tokens (real + padding)", False),
    ("pad_to_max/tokens", "computed tokens under pad_to_max", False),
    ("cost/wall_seconds", "training wall seconds", True),
    ("cost/device_hours", "device-hours", True),
    ("cost/usd", "$", True),
    ("pad_to_max/device_hours", "device-hours under pad_to_max (estimate)", True),
    ("pad_to_max/usd", "$ under pad_to_max (estimate)", True),
    ("cost/eval_device_seconds", "evaluation device seconds", True),
)


def max_length(train_dir: Path) -> float | None:
    path = Path(train_dir) / "config.yaml"
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    value = config.get("max_length") if isinstance(config, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def cell_cost(train_dir: Path, eval_dir: Path) -> dict[str, float]:
    from mosaic_it.evaluate.compare import read_metrics  # compare's report imports this module

    metrics = read_metrics(Path(train_dir) / "metrics.json", False)
    metrics.update({k: v for k, v in read_metrics(Path(eval_dir) / "metrics.json", False).items()
                    if k.startswith("cost/eval_")})
    length = max_length(train_dir)
    if length and "train/sequences" in metrics:
        metrics["pad_to_max/tokens"] = metrics["train/sequences"] * length
        if metrics.get("tokens/padded"):
            scale = metrics["pad_to_max/tokens"] / metrics["tokens/padded"]
            for key in ("device_hours", "usd"):
                if f"cost/{key}" in metrics:
                    metrics[f"pad_to_max/{key}"] = metrics[f"cost/{key}"] * scale
    return metrics


def spread(values: Sequence[float], confidence: float) -> dict:
    """Mean, sd (ddof 1) and a t-interval for the mean over seeds (None with one seed)."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return {"per_seed": list(map(float, array)), "mean": mean, "sd": None, "ci": None, "n": len(array)}
    sd = float(array.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(array) - 1) * sd / math.sqrt(len(array)))
    return {"per_seed": list(map(float, array)), "mean": mean, "sd": sd, "ci": [mean - half, mean + half],
            "n": len(array)}


def arm_costs(per_seed: Mapping[str, Sequence[Mapping[str, float]]], baseline: str,
              confidence: float) -> list[dict]:
    """One row per cost quantity: each arm's spread over seeds and its ratio to the baseline,
    the ratio taken per seed (paired) before the spread."""
    rows = []
    for key, label, with_ci in ROWS:
        row: dict = {"key": key, "label": label, "interval": with_ci, "arms": {}, "ratio_to_baseline": {}}
        for arm, cells in per_seed.items():
            values = [c[key] for c in cells if key in c]
            if len(values) == len(cells) and values:
                row["arms"][arm] = spread(values, confidence)
        base = per_seed.get(baseline, [])
        for arm, cells in per_seed.items():
            if arm == baseline or arm not in row["arms"] or baseline not in row["arms"]:
                continue
            ratios = [c[key] / b[key] for c, b in zip(cells, base) if b[key]]
            if len(ratios) == len(cells):
                row["ratio_to_baseline"][arm] = spread(ratios, confidence)
        if row["arms"]:
            rows.append(row)
    return rows

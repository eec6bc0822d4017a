"""What each arm cost, per seed and over seeds, read from the cells' training metrics.

pad_to_max (the paper's FastChat baseline pads every sequence to train.max_length): its computed
tokens are `train/sequences` x `max_length` (from the cell's config.yaml), exact. Its device-hours
and dollars are an estimate: the training loop's time scaled by pad_to_max tokens / computed
tokens (time proportional to computed tokens), plus the rest of the stage (loading, saving) as
it was. Attention grows faster than linearly with length, so for long max_length this is a lower
bound on the real pad_to_max time. Runs that predate `cost/loop_seconds` scale the whole time.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import yaml


PAD_TO_MAX_NOTE = ("pad_to_max tokens = sequences trained × train.max_length (exact). pad_to_max device-hours and $ "
                   "are an estimate: the training loop's time scaled by pad_to_max tokens / computed tokens, plus "
                   "the rest of the stage (loading, saving) as it was; attention grows faster than linearly with "
                   "length, so it is a lower bound.")
ROWS = (  # (key, label, interval over seeds)
    ("train/steps", "optimizer steps", False),
    ("train/sequences", "sequences trained", False),
    ("tokens/real", "real tokens", False),
    ("tokens/padded", "computed tokens (real + padding)", False),
    ("pad_to_max/tokens", "computed tokens under pad_to_max", False),
    ("cost/stage_seconds", "train stage seconds (billed: loading, loop, saving)", True),
    ("cost/loop_seconds", "training loop seconds", True),
    ("cost/wall_seconds", "training wall seconds", True),  # runs that predate the two above
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
    if "cost/stage_seconds" in metrics:
        metrics.pop("cost/wall_seconds", None)  # the same number under its older name
    length = max_length(train_dir)
    if length and "train/sequences" in metrics:
        metrics["pad_to_max/tokens"] = metrics["train/sequences"] * length
        if metrics.get("tokens/padded"):
            time_scale = pad_to_max_time_scale(metrics, metrics["pad_to_max/tokens"] / metrics["tokens/padded"])
            for key in ("device_hours", "usd"):
                if f"cost/{key}" in metrics:
                    metrics[f"pad_to_max/{key}"] = metrics[f"cost/{key}"] * time_scale
    return metrics


def pad_to_max_time_scale(metrics: dict[str, float], token_scale: float) -> float:
    """pad_to_max stage time / actual stage time: only the loop grows with the computed tokens."""
    stage, loop = metrics.get("cost/stage_seconds"), metrics.get("cost/loop_seconds")
    if not stage or loop is None:
        return token_scale
    return (stage - loop + loop * token_scale) / stage


def spread(values: Sequence[float], confidence: float) -> dict:
    """Mean, sd (ddof 1) and a t-interval for the mean over seeds (None with one seed)."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return {"per_seed": list(map(float, array)), "mean": mean, "sd": None, "ci": None, "n": len(array)}
    from scipy import stats  # 2.9 s to import: only a study over several seeds needs it

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

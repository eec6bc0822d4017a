"""Grouped bar charts (PNG) and flat tables (CSV, which DVC plots read directly)."""
from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

from mosaic_it.atomic import atomic_open, atomic_path


def write_csv(path: str | Path, rows: Sequence[Mapping[str, object]]) -> Path:
    path = Path(path)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def bar_chart(
    path: str | Path,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    ylabel: str = "",
) -> Path:
    """One group of bars per category, one bar per series; missing values are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.3 * len(categories) * max(1, len(series)))), 4.5))
    for k, (name, values) in enumerate(series.items()):
        xs = [i + k * width for i, v in enumerate(values) if v is not None]
        ax.bar(xs, [v for v in values if v is not None], width, label=name)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(categories))])
    ax.set_xticklabels(categories, rotation=45, ha="right", fontsize=8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path

"""Forest plot: each metric's candidate - baseline difference with its confidence interval.

Scores (rates, tau, win rate - 0.5) and held-out loss live on different scales, so they get one
panel each; a dashed line marks no difference. Verdicts colour the points.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mosaic_it.atomic import atomic_path

COLOURS = {"better": "tab:green", "worse": "tab:red"}


def _colour(verdict: str) -> str:
    return next((c for word, c in COLOURS.items() if verdict.endswith(word)), "tab:gray")


def forest_plot(path: Path, rows: Sequence[dict], title: str) -> Path:
    """`rows`: dicts with metric, label (arm pair), difference, ci, verdict, higher_is_better."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.get("ci") is not None]
    panels = [("scores: higher is better", [r for r in shown if r["higher_is_better"]]),
              ("held-out loss: lower is better", [r for r in shown if not r["higher_is_better"]])]
    panels = [(name, part) for name, part in panels if part] or [("no interval to show", [])]
    heights = [max(1, len(part)) for _, part in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.2 + 0.38 * sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (name, part) in zip(axes[:, 0], panels):
        for y, row in enumerate(reversed(part)):
            low, high = row["ci"]
            ax.errorbar(row["difference"], y, xerr=[[row["difference"] - low], [high - row["difference"]]],
                        fmt="o", color=_colour(row["verdict"]), capsize=3)
        ax.axvline(0.0, color="black", linestyle="--", linewidth=0.8)
        ax.set_yticks(range(len(part)))
        ax.set_yticklabels([f"{r['metric']} ({r['label']})" for r in reversed(part)], fontsize=8)
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.set_title(name, fontsize=9)
    axes[-1, 0].set_xlabel("candidate - baseline (win rate: - 0.5), with interval", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path

"""The comparison report as markdown: headline numbers, pairwise verdicts, cost, every metric."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mosaic_it.config.evaluate import CompareConfig

COST_GROUPS = ("cost", "tokens", "throughput", "memory")


def fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def _table(cfg: CompareConfig, rows: Sequence[dict]) -> list[str]:
    lines = [f"| metric | {cfg.baseline} | {cfg.candidate} | delta |", "|---|---:|---:|---:|"]
    lines += [f"| {r['metric']} | {fmt(r[cfg.baseline])} | {fmt(r[cfg.candidate])} | {fmt(r['delta'])} |" for r in rows]
    return lines


def render_report(cfg: CompareConfig, rows: Sequence[dict], pairwise: dict[str, dict[str, float]],
                  plots: Sequence[Path], out_dir: Path) -> str:
    lines = [f"# {cfg.candidate} vs {cfg.baseline}", "",
             f"Evaluation metrics from `{cfg.evaluate_dir}/<arm>/metrics.json`, cost from "
             f"`{cfg.train_dir}/<arm>/metrics.json`. Delta is {cfg.candidate} minus {cfg.baseline}.", ""]
    for plot in plots:
        lines += [f"![{plot.stem}]({plot.relative_to(out_dir).as_posix()})", ""]
    lines += ["## Pairwise judging", ""]
    if pairwise:
        lines += [f"Answer A is {cfg.candidate}. Each pair is judged in both orders: a win is a win in both "
                  "orders or a win and a tie; a loss is the mirror; anything else is a tie. "
                  "Winning score = (win - lose) / judged + 1.", "",
                  "| test set | win | tie | lose | error | winning score |", "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {name} | {fmt(t['win'])} | {fmt(t['tie'])} | {fmt(t['lose'])} | {fmt(t['error'])} | "
                  f"{fmt(t.get('winning_score'))} |" for name, t in sorted(pairwise.items())]
    else:
        lines.append("No judge configured (`compare.judge.url`), so no pairwise verdicts.")
    cost = [r for r in rows if r["metric"].split("/")[0] in COST_GROUPS]
    lines += ["", "## Cost", ""] + (_table(cfg, cost) if cost else ["No training metrics found."])
    lines += ["", "## Every metric", ""] + _table(cfg, [r for r in rows if r not in cost])
    return "\n".join(lines) + "\n"

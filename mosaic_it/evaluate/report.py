"""The single-run comparison report: headline with n and CI, pairwise verdicts, cost, breakdowns,
then every other metric side by side.

With one run per arm the intervals come from the item bootstrap (the hierarchical bootstrap with
one seed): they say how much the result depends on which evaluation items were drawn, not on the
training seed. `mosaic-it study` repeats the arms over seeds for that.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mosaic_it.config.evaluate import CompareConfig
from mosaic_it.study.analyze import BREAKDOWN_PREFIXES, summarize_cells
from mosaic_it.study.cells import CellDirs
from mosaic_it.study.costs import PAD_TO_MAX_NOTE
from mosaic_it.study.costs import ROWS as COST_ROWS
from mosaic_it.study.report import breakdown_table, comparison_table, cost_table, num

COST_GROUPS = ("cost", "tokens", "throughput", "memory")
N_BOOT, CONFIDENCE, RNG_SEED = 2000, 0.95, 0


def single_run_summary(cfg: CompareConfig, judged_dir: Path | None) -> dict:
    """The study's numbers for one run per arm (seed slot 0)."""
    eval_dir, train_dir = Path(cfg.evaluate_dir), Path(cfg.train_dir)
    cells = {(arm, 0): CellDirs(train_dir / arm, eval_dir / arm) for arm in (cfg.baseline, cfg.candidate)}
    label = "Mosaic-IT" if cfg.candidate == "mosaic" else cfg.candidate
    return summarize_cells(cells, cfg.baseline, cfg.candidate, {0: judged_dir} if judged_dir else None,
                           N_BOOT, CONFIDENCE, RNG_SEED, label=label)


def covered(stats: dict) -> set[str]:
    """Metrics the headline, secondary and breakdown tables already show with n and CI."""
    rows = stats["headline"] + stats["secondary"] + [r for rs in stats["breakdowns"].values() for r in rs]
    return {r["metric"] for r in rows} | {"heldout/perplexity"}  # exp(loss): the loss row says it


def _side_by_side(cfg: CompareConfig, rows: Sequence[dict], ratio: bool) -> list[str]:
    header = f"| metric | {cfg.baseline} | {cfg.candidate} |" + (f" {cfg.candidate} / {cfg.baseline} |" if ratio else "")
    lines = [header, "|---|---:|---:|" + ("---:|" if ratio else "")]
    for r in rows:
        base, cand = r[cfg.baseline], r[cfg.candidate]
        cells = f"| {r['metric']} | {num(base)} | {num(cand)} |"
        lines.append(cells + (f" {num(cand / base) if base and cand is not None else '–'} |" if ratio else ""))
    return lines


def render_report(cfg: CompareConfig, rows: Sequence[dict], pairwise: dict[str, dict[str, float]],
                  plots: Sequence[Path], out_dir: Path, stats: dict) -> str:
    base, cand, conf = cfg.baseline, cfg.candidate, stats["confidence"]
    lines = [f"# {cand} vs {base}", "",
             f"One run per arm. Difference is {cand} − {base}; every difference has its n and a {conf:.0%} "
             f"item-bootstrap interval ({stats['n_boot']} replicates): it covers which evaluation items were "
             "drawn, not the training seed (`mosaic-it study` repeats the arms over seeds). Lower held-out loss "
             f"is better. Evaluation from `{cfg.evaluate_dir}/<arm>/`, cost from `{cfg.train_dir}/<arm>/`.", "",
             "## Headline", ""]
    lines += comparison_table(stats["headline"], base, conf) + [""]
    lines += [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in plots] + [""]
    if stats["secondary"]:
        lines += ["### Secondary metrics", ""] + comparison_table(stats["secondary"], base, conf) + [""]
    lines += ["## Pairwise judging", ""]
    if pairwise:
        lines += [f"Answer A is {cand}. Each pair is judged in both orders: a win is a win in both "
                  "orders or a win and a tie; a loss is the mirror; anything else is a tie. "
                  "Winning score = (win - lose) / judged + 1; the win rate above counts a tie as half.", "",
                  "| test set | win | tie | lose | error | winning score |", "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {name} | {num(t['win'])} | {num(t['tie'])} | {num(t['lose'])} | {num(t['error'])} | "
                  f"{num(t.get('winning_score'))} |" for name, t in sorted(pairwise.items())]
        lines += [""] + comparison_table(stats["judge"]["per_test_set"], base, conf)
    else:
        lines.append("No judge configured (`compare.judge.url`), so no pairwise verdicts.")
    lines += ["", "## Cost", "", "One run per arm, so no interval; the last column is a ratio, not a difference. "
              + PAD_TO_MAX_NOTE, ""]
    lines += cost_table(stats["cost"], stats["arms"], base, conf) if stats["cost"] else ["No training metrics found."]
    shown = covered(stats) | {key for key, _, _ in COST_ROWS}
    other_cost = [r for r in rows if r["metric"].split("/")[0] in COST_GROUPS and r["metric"] not in shown]
    if other_cost:
        lines += [""] + _side_by_side(cfg, other_cost, ratio=True)
    breakdowns = stats["breakdowns"]
    lines += ["", "## Breakdowns", "", f"Each row has its own {conf:.0%} interval, not adjusted for the number of "
              f"rows (about one in twenty shows a difference by chance); rows with fewer than {stats['min_items']} "
              "items are marked.", ""]
    if breakdowns["mosaic_following"]:
        lines += ["### Mosaic following per rule", ""]
        lines += breakdown_table(breakdowns["mosaic_following"], ("rule", "score"), base, cand, stats["min_items"]) + [""]
    if breakdowns["ifeval"]:
        lines += ["### IFEval per instruction", ""]
        lines += breakdown_table(breakdowns["ifeval"], ("instruction", "mode"), base, cand, stats["min_items"]) + [""]
    rest = [r for r in rows if r["metric"] not in shown and r["metric"].split("/")[0] not in COST_GROUPS
            and not r["metric"].startswith(BREAKDOWN_PREFIXES)]
    if rest:
        lines += ["## Other metrics", "", "Counts, durations and settings, side by side (no difference is implied).", ""]
        lines += _side_by_side(cfg, rest, ratio=False) + [""]
    lines += ["## Method", "", stats["method"], ""]
    if stats["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in stats["warnings"]] + [""]
    return "\n".join(lines)

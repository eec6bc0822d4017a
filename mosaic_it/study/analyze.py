"""`analyze_study`: evaluated (arm, seed) cells -> headline comparisons, cost, breakdowns, report.

Every number the report prints is in summary.json first; report.md is rendered from it alone.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mosaic_it.errors import MosaicItError
from mosaic_it.evaluate.items import item_scores, verdict_scores
from mosaic_it.evaluate.plots import write_csv
from mosaic_it.jsonl import write_json
from mosaic_it.stats.forest import forest_plot
from mosaic_it.stats.paired import ItemScores, MetricComparison, compare_metric, compare_win_rate
from mosaic_it.study.cells import CellDirs
from mosaic_it.study.costs import arm_costs, cell_cost

HEADLINE = ("ifeval/prompt_strict", "ifeval/prompt_loose", "ifeval/instruction_strict", "ifeval/instruction_loose",
            "mosaic_following/format", "mosaic_following/count", "mosaic_following/order_kendall_tau",
            "mosaic_following/mask", "heldout/loss")
WIN_RATE = "pairwise/win_rate"
MIN_ITEMS = 10  # breakdown rows with fewer items per seed are marked
RULE_SCORES = {"format": ("format", "count"), "order": ("kendall_tau", "order_exact"), "mask": ("mask", "count")}
BREAKDOWN_PREFIXES = ("mosaic_following/by_rule/", "ifeval/strict/", "ifeval/loose/")
ALWAYS_DEFINED = ("heldout/loss", "ifeval/prompt_strict", "mosaic_following/count")  # same items in every cell
METHOD = (
    "Paired, hierarchical bootstrap: each replicate draws the seeds with replacement and, independently, the "
    "evaluation items with replacement; the same draw serves every arm (paired) and every drawn seed (the items "
    "are the same prompts in every seed). A metric is sum(numerators) / sum(denominators) over the drawn items "
    "of a seed (instruction-level IFEval counts instructions, held-out loss counts response tokens), averaged "
    "over the drawn seeds. The interval is the percentile interval of the replicate differences; resampling both "
    "levels errs wide rather than narrow. Minimum detectable effect: (z(1 - alpha/2) + z(0.8)) x bootstrap SE, "
    "the true difference this design detects with 80% power."
)


@dataclass
class StudySummary:
    report: Path
    summary: Path
    plots: list[Path]
    headline: list[dict]  # one dict per headline metric (candidate vs baseline): n, means, CI, verdict
    tables: list[Path] = field(default_factory=list)


def units(metric: str) -> tuple[str, str | None]:
    """(what an item is, what the denominator counts when it is not 1)."""
    if metric.startswith("heldout/"):
        return "records", "response tokens"
    if metric.startswith("ifeval/instruction") or metric.startswith(("ifeval/strict/", "ifeval/loose/")):
        return "prompts", "instructions"
    if metric.startswith("ifeval/"):
        return "prompts", None
    if metric.startswith("pairwise/"):
        return "judged prompts", None
    return "probes", None


def row(comparison: MetricComparison, seeds: Sequence[Mapping[str, ItemScores]], label: str) -> dict:
    item, weight = units(comparison.metric)
    cells = [s[comparison.metric] for s in seeds if comparison.metric in s]
    weights = [sum(d for _, d in c.values()) for c in cells]
    per_cell = [sum(1 for _, d in c.values() if d > 0) for c in cells]
    low, high = comparison.ci if comparison.ci else (None, None)
    return {**comparison.as_dict(), "ci_low": low, "ci_high": high, "label": label, "item_unit": item, "weight_unit": weight,
            "weight_per_cell": sum(weights) / len(weights) if weights and weight else None,
            "min_items_per_cell": min(per_cell) if per_cell else 0}


def _cell_scores(cells: Mapping[tuple[str, int], CellDirs], arms: Sequence[str], seeds: Sequence[int]) -> dict:
    missing = [f"{arm}@seed{seed}" for arm in arms for seed in seeds if (arm, seed) not in cells]
    if missing:
        raise MosaicItError(f"study cells missing: {', '.join(missing)}")
    return {arm: [item_scores(cells[(arm, seed)].eval_dir) for seed in seeds] for arm in arms}


def _compare(metric: str, scores: dict, baseline: str, arm: str, label: str, **boot) -> dict | None:
    base, cand = [s.get(metric, {}) for s in scores[baseline]], [s.get(metric, {}) for s in scores[arm]]
    if not any(base) and not any(cand):
        return None
    comparison = compare_metric(metric, base, cand, baseline, arm, label=label, **boot)
    return row(comparison, scores[baseline] + scores[arm], f"{arm} vs {baseline}")


def _breakdowns(scores: dict, baseline: str, candidate: str, label: str, **boot) -> dict[str, list[dict]]:
    keys = sorted(set().union(*(s.keys() for s in scores[baseline] + scores[candidate])))
    prefix = "mosaic_following/by_rule/"  # then <rule>/<score>, the rule being "format" or "<strategy>/<NAME>"
    rules = sorted({k.removeprefix(prefix).rsplit("/", 1)[0] for k in keys if k.startswith(prefix)})
    mosaic_rows, ifeval_rows = [], []
    for rule in rules:
        for score in RULE_SCORES.get(rule.split("/")[0], ()):
            found = _compare(f"mosaic_following/by_rule/{rule}/{score}", scores, baseline, candidate, label, **boot)
            if found:
                mosaic_rows.append({"rule": rule, "score": score, **found})
    for instruction in sorted({k.split("/", 2)[2] for k in keys if k.startswith("ifeval/strict/")}):
        for mode in ("strict", "loose"):
            found = _compare(f"ifeval/{mode}/{instruction}", scores, baseline, candidate, label, **boot)
            if found:
                ifeval_rows.append({"instruction": instruction, "mode": mode, **found})
    for r in mosaic_rows + ifeval_rows:
        r["few_items"] = r["min_items_per_cell"] < MIN_ITEMS
    return {"mosaic_following": mosaic_rows, "ifeval": ifeval_rows}


def _item_warnings(scores: dict, seeds: Sequence[int]) -> list[str]:
    warnings = [f"{arm}@seed{seed}: no per-item scores (evaluated before they were written?); rerun "
                "`mosaic-it evaluate` for this cell" for arm, cells in scores.items()
                for seed, found in zip(seeds, cells) if not found]
    for metric in ALWAYS_DEFINED:
        sets = {frozenset(s.get(metric, {})) for cells in scores.values() for s in cells}
        if len(sets) > 1:
            warnings.append(f"{metric}: the cells were not evaluated on the same items ({min(map(len, sets))} to "
                            f"{max(map(len, sets))}); only items present in both arms of a seed are paired")
    return warnings


def _judged(judged: Mapping[int, Path], seeds: Sequence[int], baseline: str, candidate: str, label: str,
            **boot) -> tuple[list[dict], dict]:
    outcomes, counts = [], {}
    for seed in seeds:
        if seed not in judged:
            raise MosaicItError(f"no pairwise verdicts for seed {seed}")
        found, counts[seed] = verdict_scores(judged[seed])
        outcomes.append(found)
    names = sorted(set().union(*(o.keys() for o in outcomes)), key=lambda k: (k != WIN_RATE, k))
    rows = []
    for metric in names:
        comparison = compare_win_rate(metric, [o.get(metric, {}) for o in outcomes], baseline, candidate,
                                      label=label, **boot)
        rows.append(row(comparison, outcomes, f"{candidate} vs {baseline}"))
    return rows, counts


def summarize_cells(cells: Mapping[tuple[str, int], CellDirs], baseline: str, candidate: str,
                    judged: Mapping[int, Path] | None = None, n_boot: int = 2000, confidence: float = 0.95,
                    rng_seed: int = 0, extra_arms: Sequence[str] = (), label: str = "Mosaic-IT") -> dict:
    """Every number of the report, as JSON-ready data (the study's and the single-run compare's)."""
    seeds = sorted({seed for _, seed in cells})
    arms = [baseline, candidate, *[a for a in extra_arms if a not in (baseline, candidate)]]
    scores = _cell_scores(cells, arms, seeds)
    boot = {"n_boot": n_boot, "confidence": confidence, "rng_seed": rng_seed}
    headline = [r for m in HEADLINE if (r := _compare(m, scores, baseline, candidate, label, **boot))]
    judge_rows, judge_counts = _judged(judged, seeds, baseline, candidate, label, **boot) if judged else ([], {})
    headline += judge_rows[:1]
    shown = set(HEADLINE) | {WIN_RATE}
    secondary = [r for m in _secondary(scores, baseline, candidate, shown)
                 if (r := _compare(m, scores, baseline, candidate, label, **boot))]
    extra = [r for arm in arms[2:] for m in HEADLINE if (r := _compare(m, scores, baseline, arm, arm, **boot))]
    costs = {arm: [cell_cost(cells[(arm, s)].train_dir, cells[(arm, s)].eval_dir) for s in seeds] for arm in arms}
    return {
        "baseline": baseline, "candidate": candidate, "arms": arms, "seeds": seeds, **boot,
        "min_items": MIN_ITEMS, "method": METHOD, "headline": headline, "secondary": secondary, "extra_arms": extra,
        "judge": {"outcomes_per_seed": {str(s): c for s, c in judge_counts.items()}, "per_test_set": judge_rows[1:]},
        "cost": arm_costs(costs, baseline, confidence),
        "breakdowns": _breakdowns(scores, baseline, candidate, label, **boot),
        "warnings": _item_warnings(scores, seeds),
    }


def _secondary(scores: dict, baseline: str, candidate: str, shown: set[str]) -> list[str]:
    """Item-scored metrics that are neither headline nor breakdown (e.g. order Spearman, exact order)."""
    keys = set().union(*(s.keys() for s in scores[baseline] + scores[candidate]))
    return sorted(k for k in keys if k not in shown and not k.startswith(BREAKDOWN_PREFIXES))


def write_summary(summary: dict, out_dir: Path, title: str) -> tuple[Path, list[Path], list[Path]]:
    """summary.json, the CSV tables and the forest plot; returns (summary path, tables, plots)."""
    summary_path = Path(out_dir) / "summary.json"
    write_json(summary_path, summary)
    tables = [write_csv(out_dir / f"breakdown_{name}.csv", [_flat(r) for r in rows])
              for name, rows in summary["breakdowns"].items() if rows]
    compared = summary["headline"] + summary["secondary"] + summary["extra_arms"]
    tables.append(write_csv(out_dir / "headline.csv", [_flat(r) for r in compared]))
    plots = [forest_plot(out_dir / "plots" / "forest.png", summary["headline"] + summary["extra_arms"], title)]
    return summary_path, tables, plots


def analyze_study(cells: Mapping[tuple[str, int], CellDirs], baseline: str, candidate: str, out_dir: Path,
                  judged: Mapping[int, Path] | None = None, n_boot: int = 2000, confidence: float = 0.95,
                  rng_seed: int = 0, extra_arms: Sequence[str] = ()) -> StudySummary:
    from mosaic_it.atomic import write_text
    from mosaic_it.study.report import render_study_report

    out_dir = Path(out_dir)
    summary = summarize_cells(cells, baseline, candidate, judged, n_boot, confidence, rng_seed, extra_arms)
    title = f"{candidate} vs {baseline}: {len(summary['seeds'])} seed(s), {confidence:.0%} intervals"
    summary_path, tables, plots = write_summary(summary, out_dir, title)
    report = write_text(out_dir / "report.md", render_study_report(summary, [p.relative_to(out_dir) for p in plots]))
    return StudySummary(report, summary_path, plots, summary["headline"], tables)


def _flat(r: dict) -> dict:
    """One CSV row: the numbers a spreadsheet needs, per-seed values spelled out."""
    flat = {k: v for k, v in r.items() if not isinstance(v, (dict, list, tuple))}
    flat["ci_low"], flat["ci_high"] = r["ci"] if r.get("ci") else (None, None)
    for arm, values in r["per_seed"].items():
        flat[f"{arm}_mean"], flat[f"{arm}_sd"] = r["mean"][arm], r["sd"][arm]
        flat.update({f"{arm}_seed{k}": v for k, v in enumerate(values)})
    return flat

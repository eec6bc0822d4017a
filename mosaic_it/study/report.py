"""The study report as markdown, rendered from summary.json's content alone.

Order: headline table, forest plot, per-seed values, secondary metrics, other arms, judge outcomes,
cost, breakdowns, method. Every compared number sits beside its n and its interval.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mosaic_it.study.costs import PAD_TO_MAX_NOTE


def num(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) < 1e-12:  # float noise in an sd or a difference of equal values
        return "0"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def interval(ci: Sequence[float] | None) -> str:
    return f"[{num(ci[0])}, {num(ci[1])}]" if ci else "–"


def mean_sd(row: dict, arm: str) -> str:
    mean, sd = row["mean"].get(arm), row["sd"].get(arm)
    return num(mean) if sd is None else f"{num(mean)} ± {num(sd)}"


def n_text(row: dict) -> str:
    text = f"{row['seeds']} × {row['items']} {row['item_unit']}"
    if row.get("weight_unit") and row.get("weight_per_cell"):
        text += f" (≈{num(row['weight_per_cell'])} {row['weight_unit']} per seed)"
    return text


def short_verdict(row: dict) -> str:
    if row["verdict"].startswith("no detectable"):
        return f"none detected (MDE ≈ {row['mde']:.2g})"
    return row["verdict"]


def comparison_table(rows: Sequence[dict], baseline: str, confidence: float) -> list[str]:
    if not rows:
        return ["No metric was evaluated in every cell."]
    arms = [r["candidate"] for r in rows]
    cand = arms[0] if len(set(arms)) == 1 else "candidate"
    spread = " (mean ± sd over seeds)" if rows[0]["seeds"] > 1 else ""
    lines = [f"| metric | n (seeds × items) | {baseline}{spread} | {cand}{spread} | "
             f"difference | {confidence:.0%} CI | verdict |", "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        base = "0.5 (parity)" if r["baseline"] == "parity" else mean_sd(r, r["baseline"])
        name = r["metric"] + ("" if len(set(arms)) == 1 else f" ({r['candidate']})")
        difference = num(r["difference"]) + (" (win rate − 0.5)" if r["baseline"] == "parity" else "")
        lines.append(f"| {name} | {n_text(r)} | {base} | {mean_sd(r, r['candidate'])} | {difference} | "
                     f"{interval(r['ci'])} | {r['verdict']} |")
    return lines


def per_seed_table(rows: Sequence[dict], seeds: Sequence[int]) -> list[str]:
    lines = ["| metric | arm | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|---|" + "---:|" * len(seeds)]
    for r in rows:
        for arm, values in r["per_seed"].items():
            if arm != "parity":
                lines.append(f"| {r['metric']} | {arm} | " + " | ".join(num(v) for v in values) + " |")
    return lines


def cost_table(rows: Sequence[dict], arms: Sequence[str], baseline: str, confidence: float) -> list[str]:
    others = [a for a in arms if a != baseline]
    seeds = max((s["n"] for r in rows for s in r["arms"].values()), default=0)
    lines = [f"| quantity (n = {seeds} seed{'s' if seeds != 1 else ''} per arm) | " + " | ".join(arms) + " | " + " | ".join(f"{a} / {baseline}" for a in others) + " |",
             "|---|" + "---:|" * (len(arms) + len(others))]
    for r in rows:
        cells = [_spread(r["arms"].get(a), r["interval"]) for a in arms]
        cells += [_spread(r["ratio_to_baseline"].get(a), True) for a in others]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    return lines


def _spread(s: dict | None, with_ci: bool) -> str:
    if s is None:
        return "–"
    text = num(s["mean"]) if s["sd"] is None else f"{num(s['mean'])} ± {num(s['sd'])}"
    return text + (f" {interval(s['ci'])}" if with_ci and s.get("ci") else "")


def breakdown_table(rows: Sequence[dict], keys: Sequence[str], baseline: str, candidate: str, min_items: int) -> list[str]:
    lines = ["| " + " | ".join(keys) + f" | n (seeds × items) | {baseline} | {candidate} | difference | CI | verdict | note |",
             "|" + "---|" * len(keys) + "---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        note = f"few items (< {min_items} per seed)" if r["few_items"] else ""
        lines.append("| " + " | ".join(str(r[k]) for k in keys) + f" | {n_text(r)} | {mean_sd(r, baseline)} | "
                     f"{mean_sd(r, candidate)} | {num(r['difference'])} | {interval(r['ci'])} | {short_verdict(r)} | {note} |")
    return lines


def render_study_report(summary: dict, plots: Sequence[Path]) -> str:
    base, cand, conf = summary["baseline"], summary["candidate"], summary["confidence"]
    seeds = summary["seeds"]
    lines = [f"# Study: {cand} (Mosaic-IT) vs {base}", "",
             f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}); arms {', '.join(summary['arms'])}. Difference is "
             f"{cand} − {base}; the {conf:.0%} interval comes from a paired, hierarchical bootstrap over seeds and "
             f"evaluation items ({summary['n_boot']} replicates, seed {summary['rng_seed']}; see Method). "
             "Lower held-out loss is better; every other metric is better higher.", "",
             "## Headline", ""]
    lines += comparison_table(summary["headline"], base, conf)
    lines += [""] + [f"![{p.stem}]({p.as_posix()})" for p in plots] + [""]
    lines += ["### Per-seed values", ""] + per_seed_table(summary["headline"], seeds) + [""]
    if summary["secondary"]:
        lines += ["### Secondary metrics", ""] + comparison_table(summary["secondary"], base, conf) + [""]
    if summary["extra_arms"]:
        lines += [f"## Other arms vs {base}", ""] + comparison_table(summary["extra_arms"], base, conf) + [""]
    if summary["judge"]["outcomes_per_seed"]:
        lines += ["## Pairwise judge", "", "Win 1, tie 0.5, lose 0 per prompt (each pair judged in both orders); "
                  "errors are left out of the win rate and counted here.", "",
                  "| seed | win | tie | lose | error |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {s} | {c['win']} | {c['tie']} | {c['lose']} | {c['error']} |"
                  for s, c in summary["judge"]["outcomes_per_seed"].items()]
        lines += [""] + comparison_table(summary["judge"]["per_test_set"], base, conf) + [""]
    lines += ["## Cost", "", f"Mean ± sd over seeds; time and money also with a {conf:.0%} t-interval over seeds; "
              f"ratios are taken per seed (paired) before averaging. {PAD_TO_MAX_NOTE}", ""]
    lines += cost_table(summary["cost"], summary["arms"], base, conf) if summary["cost"] else ["No training metrics found."]
    breakdowns = summary["breakdowns"]
    lines += ["", "## Breakdowns", "", f"Each row has its own {conf:.0%} interval, not adjusted for the number of "
              "rows: among many rows with no true difference, about one in twenty still shows one. Rows with "
              f"fewer than {summary['min_items']} items per seed are marked.", ""]
    if breakdowns["mosaic_following"]:
        lines += ["### Mosaic following per rule", ""]
        lines += breakdown_table(breakdowns["mosaic_following"], ("rule", "score"), base, cand, summary["min_items"]) + [""]
    if breakdowns["ifeval"]:
        lines += ["### IFEval per instruction", ""]
        lines += breakdown_table(breakdowns["ifeval"], ("instruction", "mode"), base, cand, summary["min_items"]) + [""]
    lines += ["## Method", "", summary["method"], ""]
    if summary["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in summary["warnings"]] + [""]
    return "\n".join(lines)

"""Mosaic-following benchmark: can the model answer held-out mosaics as their meta-instruction asks?

Probes are built by the mosaic engine from held-out records, `mosaic_per_rule` for the format
strategy and for every order and mask rule, with a fixed seed; scoring is in mosaic_score.
"""
from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mosaic_it.errors import MosaicItError
from mosaic_it.evaluate.context import EvalContext, Metrics
from mosaic_it.evaluate.mosaic_score import score_generation
from mosaic_it.evaluate.plots import bar_chart, write_csv
from mosaic_it.jsonl import write_jsonl

SCORES = ("format", "count", "kendall_tau", "spearman", "order_exact", "mask")
ATTEMPTS_PER_PROBE = 50  # a forced rule may not apply to a random draw (e.g. needs numbering)


def probe_targets() -> list[tuple[str, str | None]]:
    from mosaic_it.mosaic.rules import MASK_RULES, ORDER_RULES

    return [("format", None)] + [("order", r) for r in ORDER_RULES] + [("mask", r) for r in MASK_RULES]


def probe_key(sample: dict[str, Any]) -> str:
    meta = sample["mosaic"]
    return meta["strategy"] if meta["rule"] is None else f"{meta['strategy']}/{meta['rule']}"


def build_probes(records: Sequence[dict], per_rule: int, max_instructions: int, seed: int) -> list[dict]:
    from mosaic_it.mosaic.engine import make_sample

    if len(records) < 2:
        raise MosaicItError("mosaic following needs at least 2 held-out records")
    rng = random.Random(seed)
    probes = []
    for strategy, rule in probe_targets():
        made = 0
        for _ in range(per_rule * ATTEMPTS_PER_PROBE):
            if made == per_rule:
                break
            ids = rng.sample(range(len(records)), rng.randint(2, min(max_instructions, len(records))))
            try:
                probes.append(make_sample([records[i] for i in ids], ids, rng, strategy, rule))
            except ValueError:
                continue
            made += 1
    return probes


def mean(values: Sequence[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def summarise(probes: Sequence[dict], scores: Sequence[dict]) -> tuple[list[dict], Metrics]:
    """Per-rule table rows and the flat metrics (overall and per rule)."""
    by_key: dict[str, list[dict]] = defaultdict(list)
    for probe, score in zip(probes, scores):
        by_key[probe_key(probe)].append(score)
    rows = []
    for key, group in by_key.items():
        row: dict[str, Any] = {"rule": key, "n": len(group)}
        row.update({name: mean([s[name] for s in group]) for name in SCORES})
        rows.append(row)
    order_scores = [s for p, s in zip(probes, scores) if p["mosaic"]["strategy"] == "order"]
    overall = {
        "format": mean([s["format"] for s in scores]),
        "count": mean([s["count"] for s in scores]),
        "order_kendall_tau": mean([s["kendall_tau"] for s in order_scores]),
        "order_spearman": mean([s["spearman"] for s in order_scores]),
        "order_exact": mean([s["order_exact"] for s in order_scores]),
        "mask": mean([s["mask"] for s in scores]),
        "probes": float(len(probes)),
    }
    metrics = {k: v for k, v in overall.items() if v is not None}
    for row in rows:
        metrics.update({f"by_rule/{row['rule']}/{name}": row[name] for name in SCORES if row[name] is not None})
    return rows, metrics


def run(ctx: EvalContext) -> Metrics:
    from mosaic_it.records import instruction_text

    cfg = ctx.cfg
    records = ctx.heldout_records
    probes = build_probes(records, cfg.mosaic_per_rule, cfg.mosaic_max_instructions, cfg.seed)
    generations = ctx.generate([p["instruction"] for p in probes], "mosaic following", cfg.mosaic_max_new_tokens)
    # A reference holds the instruction too: an answer tends to reuse its question's words.
    references = {i: f"{instruction_text(r)}\n{r['output']}" for i, r in enumerate(records)}
    scores = [score_generation(p, g, references) for p, g in zip(probes, generations)]
    ctx.artifacts.append(ctx.path("generations", "mosaic_following.jsonl"))
    write_jsonl(ctx.artifacts[-1], (
        {"rule": probe_key(p), "prompt": p["instruction"], "reference": p["output"], "generation": g, "scores": s}
        for p, g, s in zip(probes, generations, scores)
    ))
    rows, metrics = summarise(probes, scores)
    ctx.artifacts.append(write_csv(ctx.path("plots", "mosaic_following.csv"), rows))
    ctx.artifacts.append(bar_chart(
        ctx.path("plots", "mosaic_following.png"),
        [r["rule"] for r in rows],
        {name: [r[name] for r in rows] for name in ("format", "count", "kendall_tau", "mask")},
        f"Mosaic following per rule ({ctx.cfg.arm})",
    ))
    return metrics

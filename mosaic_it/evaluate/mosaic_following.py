"""Mosaic-following benchmark: can the model answer held-out mosaics as their meta-instruction asks?

Probes are built by the mosaic engine from held-out records, `mosaic_per_rule` for the format
strategy and for every order and mask rule, with a fixed seed; scoring is in mosaic_score.
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from mosaic_it.errors import MosaicItError
from mosaic_it.evaluate.context import EvalContext, Metrics, PromptSet
from mosaic_it.evaluate.items import ItemRow, aggregate, short_hash, write_items
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


def probe_items(probes: Sequence[dict], scores: Sequence[dict]) -> list[ItemRow]:
    """One item per probe, id "<rule>#<k>:<prompt hash>"; a score that does not apply is absent."""
    seen: Counter[str] = Counter()
    rows: list[ItemRow] = []
    for probe, score in zip(probes, scores):
        key = probe_key(probe)
        item = f"{key}#{seen[key]}:{short_hash(probe['instruction'])}"
        seen[key] += 1
        wanted = {"format": score["format"], "count": score["count"], "mask": score["mask"]}
        if probe["mosaic"]["strategy"] == "order":
            wanted.update({"order_kendall_tau": score["kendall_tau"], "order_spearman": score["spearman"],
                           "order_exact": score["order_exact"]})
        wanted.update({f"by_rule/{key}/{name}": score[name] for name in SCORES})
        rows.append((item, {name: (float(v), 1.0) for name, v in wanted.items() if v is not None}))
    return rows


def summarise(probes: Sequence[dict], scores: Sequence[dict]) -> tuple[list[dict], list[ItemRow], Metrics]:
    """Per-rule table rows, the per-probe items and the flat metrics (overall and per rule)."""
    items = probe_items(probes, scores)
    # Order agreement exists only where two or more answers could be matched; say over how many
    # probes, so a tau of 1.0 from a single probe reads as what it is.
    ranked = sum(1 for _, item in items if "order_kendall_tau" in item)
    metrics = {**aggregate(items), "probes": float(len(probes)), "order_ranked": float(ranked)}
    sizes = Counter(probe_key(p) for p in probes)
    rows = [{"rule": key, "n": n, **{name: metrics.get(f"by_rule/{key}/{name}") for name in SCORES}}
            for key, n in sizes.items()]
    return rows, items, metrics


def probes_of(ctx: EvalContext) -> list[dict]:
    cfg = ctx.cfg
    return build_probes(ctx.heldout_records, cfg.mosaic_per_rule, cfg.mosaic_max_instructions, cfg.seed)


def request(ctx: EvalContext, probes: Sequence[dict]) -> PromptSet:
    return PromptSet([p["instruction"] for p in probes], "mosaic following", ctx.cfg.mosaic_max_new_tokens)


def prompts(ctx: EvalContext) -> PromptSet:
    return request(ctx, probes_of(ctx))


def run(ctx: EvalContext) -> Metrics:
    from mosaic_it.records import instruction_text

    records = ctx.heldout_records
    probes = probes_of(ctx)
    generations = ctx.ask(request(ctx, probes))
    # A reference holds the instruction too: an answer tends to reuse its question's words.
    references = {i: f"{instruction_text(r)}\n{r['output']}" for i, r in enumerate(records)}
    scores = [score_generation(p, g, references) for p, g in zip(probes, generations)]
    ctx.artifacts.append(ctx.path("generations", "mosaic_following.jsonl"))
    write_jsonl(ctx.artifacts[-1], (
        {"rule": probe_key(p), "prompt": p["instruction"], "reference": p["output"], "generation": g, "scores": s}
        for p, g, s in zip(probes, generations, scores)
    ))
    rows, items, metrics = summarise(probes, scores)
    ctx.artifacts.append(write_items(ctx.out_dir, "mosaic_following", items))
    ctx.artifacts.append(write_csv(ctx.path("plots", "mosaic_following.csv"), rows))
    ctx.artifacts.append(bar_chart(
        ctx.path("plots", "mosaic_following.png"),
        [r["rule"] for r in rows],
        {name: [r[name] for r in rows] for name in ("format", "count", "kendall_tau", "mask")},
        f"Mosaic following per rule ({ctx.cfg.arm})",
    ))
    return metrics

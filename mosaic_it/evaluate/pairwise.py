"""Answers on the pairwise test sets, saved for `compare` to have judged against another arm's."""
from __future__ import annotations

from mosaic_it.evaluate.context import EvalContext, Metrics, PromptSet
from mosaic_it.evaluate.ifeval.text import count_words
from mosaic_it.evaluate.test_sets import load_test_set
from mosaic_it.jsonl import write_jsonl


def generations_path(arm_dir, test_set: str):
    return arm_dir / "generations" / "pairwise" / f"{test_set}.jsonl"


def test_sets(ctx: EvalContext) -> dict[str, list[dict]]:
    return {name: load_test_set(name, ctx.cfg.pairwise_dir, ctx.cfg.pairwise_limit) for name in ctx.cfg.pairwise_sets}


def request(sets: dict[str, list[dict]]) -> PromptSet:
    # One request for every set: a batch never waits on a set's last few prompts.
    return PromptSet([row["prompt"] for rows in sets.values() for row in rows], "pairwise")


def prompts(ctx: EvalContext) -> PromptSet:
    return request(test_sets(ctx))


def run(ctx: EvalContext) -> Metrics:
    metrics: Metrics = {}
    sets = test_sets(ctx)
    answers = iter(ctx.ask(request(sets)))
    for name, rows in sets.items():
        responses = [next(answers) for _ in rows]
        path = generations_path(ctx.out_dir, name)
        write_jsonl(path, ({**row, "response": r} for row, r in zip(rows, responses)))
        ctx.artifacts.append(path)
        metrics[f"{name}/prompts"] = float(len(rows))
        metrics[f"{name}/mean_words"] = sum(map(count_words, responses)) / max(1, len(responses))
    return metrics

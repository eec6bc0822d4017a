"""IFEval as an eval: generate for each prompt, score strict and loose, write a per-instruction plot."""
from __future__ import annotations

from mosaic_it.evaluate.context import EvalContext, Metrics, PromptSet
from mosaic_it.evaluate.ifeval.score import load_prompts, prompt_items, score_response
from mosaic_it.evaluate.items import aggregate, write_items
from mosaic_it.evaluate.plots import bar_chart, write_csv
from mosaic_it.jsonl import write_jsonl

HEADLINE = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")


def request(rows: list[dict]) -> PromptSet:
    return PromptSet([row["prompt"] for row in rows], "ifeval")


def prompts(ctx: EvalContext) -> PromptSet:
    return request(load_prompts(ctx.cfg.ifeval_path, ctx.cfg.ifeval_limit))


def run(ctx: EvalContext) -> Metrics:
    rows = load_prompts(ctx.cfg.ifeval_path, ctx.cfg.ifeval_limit)
    responses = ctx.ask(request(rows))
    scores = [score_response(row, response) for row, response in zip(rows, responses)]
    ctx.artifacts.append(ctx.path("generations", "ifeval.jsonl"))
    write_jsonl(ctx.artifacts[-1], (
        {"key": row.get("key"), "prompt": row["prompt"], "response": response, **score}
        for row, response, score in zip(rows, responses, scores)
    ))
    items = prompt_items(rows, scores)
    ctx.artifacts.append(write_items(ctx.out_dir, "ifeval", items))
    metrics = aggregate(items)
    per_id = sorted(k for k in metrics if k.startswith("strict/"))
    table = [{"instruction": k.removeprefix("strict/"), "strict": metrics[k]} for k in per_id]
    ctx.artifacts.append(write_csv(ctx.path("plots", "ifeval.csv"), table))
    ctx.artifacts.append(bar_chart(
        ctx.path("plots", "ifeval.png"),
        [*HEADLINE, *(row["instruction"] for row in table)],
        {"accuracy": [metrics.get(k) for k in HEADLINE] + [row["strict"] for row in table]},
        f"IFEval ({ctx.cfg.arm}, {len(rows)} prompts; per instruction: strict)",
    ))
    return {**metrics, "prompts": float(len(rows))}

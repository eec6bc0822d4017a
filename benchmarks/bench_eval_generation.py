"""What one `mosaic-it evaluate` asks the model, answered three ways, side by side.

The prompts are those of params.yaml's evaluate section (mosaic-following probes with their own
token limit, IFEval, the pairwise sets), built by the evals themselves (`prompts(ctx)` in the
registry). One process loads the model once and answers them, alternating rounds:
- today's path of issue 10: HF `generate` over padded static batches of 8, one call per eval;
- continuous batching, one call per eval (the slots drain at the end of each call);
- continuous batching, one call for all evals (`EvalContext.prefetch`, the default now), which
  on a CPU with two torch threads decodes in two processes (evaluate/forked_slots.py);
- the same in one process (`pooled_one`), for the two-process ratio.
It reports prompts/s (best and median over rounds), each decoder's ratio to today's path, and
how many answers agree token for token with today's path and between the two continuous runs
(which must agree on all: an answer there ignores its batch mates). No generation cache.

    .venv/bin/python benchmarks/bench_eval_generation.py [--rounds 2] [-S evaluate.ifeval_limit=64 ...]
    .venv/bin/python benchmarks/bench_eval_generation.py --baseline pooled_one --decoders pooled

`--baseline` names the decoder the others are compared with (today's path unless given).

Held-out records for the probes come from evaluate.heldout (runs/split/heldout.jsonl after the
README job) or `--heldout FILE`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from side_by_side import agree, alternate, print_table, rows

ROOT = Path(__file__).resolve().parents[1]
DECODERS = ["today", "per_eval", "pooled", "pooled_one"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="section.key=value")
    parser.add_argument("--heldout", default=None, help="held-out records for the mosaic probes")
    parser.add_argument("--model", default=None, help="model directory (default: the embedded SmolLM2-135M)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--static-batch", type=int, default=8)
    parser.add_argument("--decoders", nargs="+", default=["today", "per_eval", "pooled"],
                        choices=DECODERS, help="which to run besides the baseline")
    parser.add_argument("--baseline", default="today", choices=DECODERS)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    from mosaic_it.config import load_params
    from mosaic_it.evaluate import forked_slots
    from mosaic_it.evaluate.context import EvalContext
    from mosaic_it.evaluate.generate import generate
    from mosaic_it.evaluate.model import load_model
    from mosaic_it.evaluate.registry import EVALS

    overrides = [*args.overrides, "evaluate.generation.cache_dir=null", "evaluate.device=cpu", "evaluate.backend=hf"]
    cfg = load_params(args.params, overrides).evaluate.model_copy(update={"model": args.model})
    if args.heldout:
        cfg = cfg.model_copy(update={"heldout": args.heldout})
    model, tokenizer = load_model(cfg.model, cfg.device, cfg.attn_implementation)
    probe = EvalContext(cfg, model, tokenizer, Path("."))
    requests = [EVALS[n].prompts(probe) for n in dict.fromkeys(cfg.evals) if EVALS[n].prompts is not None]
    total = sum(len(r.prompts) for r in requests)
    static = cfg.generation.model_copy(update={"batching": "static", "batch_size": args.static_batch})

    def today() -> list[str]:
        return [a for r in requests for a in generate(
            model, tokenizer, r.prompts, static.model_copy(update={"max_new_tokens": r.max_new_tokens or static.max_new_tokens}),
            r.desc, cfg.seed, cfg.prompt_format)]

    def per_eval() -> list[str]:
        ctx = EvalContext(cfg, model, tokenizer, Path("."))
        return [a for r in requests for a in ctx.ask(r)]

    def pooled() -> list[str]:
        ctx = EvalContext(cfg, model, tokenizer, Path("."))
        ctx.prefetch(requests)
        assert ctx.prefetched
        return [a for r in requests for a in ctx.ask(r)]

    def pooled_one() -> list[str]:
        fork_at, forked_slots.FORK_AT_PROMPTS = forked_slots.FORK_AT_PROMPTS, 1 << 30
        try:
            return pooled()
        finally:
            forked_slots.FORK_AT_PROMPTS = fork_at

    slots = cfg.generation.batch_size
    named = {"today": (f"static HF batches of {args.static_batch}, one call per eval (today's path)", today),
             "per_eval": (f"continuous {slots} slots, one call per eval", per_eval),
             "pooled": (f"continuous {slots} slots, one call for all evals (default)", pooled),
             "pooled_one": (f"continuous {slots} slots, one call for all evals, one process", pooled_one)}
    decoders = dict(named[key] for key in dict.fromkeys([args.baseline, *args.decoders]))
    seconds, answers, loads = alternate(decoders, args.rounds)
    table = rows(seconds, answers, next(iter(decoders)), total)
    continuous = [named[key][0] for key in ("per_eval", "pooled") if named[key][0] in answers]
    between = agree(*(answers[n] for n in continuous)) if len(continuous) == 2 else None
    sizes = ", ".join(f"{r.desc} {len(r.prompts)} x {r.max_new_tokens or cfg.generation.max_new_tokens} tokens"
                      for r in requests)
    print(f"{total} prompts ({sizes}), greedy, {args.rounds} rounds, load {min(loads):.1f}-{max(loads):.1f}, "
          f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}")
    print_table(table, args.baseline, total)
    if between is not None:
        print(f"continuous one call per eval vs one call for all: {between}/{total} same answers")
    if args.out:
        args.out.write_text(json.dumps({"prompts": total, "requests": sizes, "rounds": args.rounds,
                                        "load_1min_min_max": [min(loads), max(loads)], "rows": table,
                                        "continuous_per_eval_vs_pooled_same": between}, indent=2) + "\n")


if __name__ == "__main__":
    main()

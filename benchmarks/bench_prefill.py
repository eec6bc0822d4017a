"""One evaluate stage's prompts prefilled alone (one forward per prompt) and packed (up to
PACK_TOKENS prompt tokens per forward, each prompt attending to itself), side by side.

The prompts are those `mosaic-it evaluate` sends with params.yaml's evaluate section, in the order
the continuous decoder takes them, rendered and tokenized as it does. Rounds alternate in one
process. Besides seconds it checks what packing must keep: every prompt's first token and its
keys and values in every layer, bit for bit.

    .venv/bin/python benchmarks/bench_prefill.py [--model DIR] [--heldout FILE] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--model", default=None, help="model directory (default: the embedded SmolLM2-135M)")
    parser.add_argument("--heldout", default=None, help="held-out records for the mosaic probes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    import torch

    from mosaic_it.config import load_params
    from mosaic_it.evaluate import slots
    from mosaic_it.evaluate.context import EvalContext
    from mosaic_it.evaluate.generate import render_prompt
    from mosaic_it.evaluate.model import load_model
    from mosaic_it.evaluate.registry import EVALS

    overrides = ["evaluate.generation.cache_dir=null", "evaluate.device=cpu", "evaluate.backend=hf"]
    cfg = load_params(args.params, overrides).evaluate.model_copy(update={"model": args.model})
    if args.heldout:
        cfg = cfg.model_copy(update={"heldout": args.heldout})
    model, tokenizer = load_model(cfg.model, cfg.device, cfg.attn_implementation)
    probe = EvalContext(cfg, model, tokenizer, Path("."))
    requests = [EVALS[n].prompts(probe) for n in dict.fromkeys(cfg.evals) if EVALS[n].prompts is not None]
    texts = [render_prompt(p, tokenizer, cfg.prompt_format) for r in requests for p in r.prompts]
    caps = [r.max_new_tokens or cfg.generation.max_new_tokens for r in requests for _ in r.prompts]
    ids = tokenizer(texts, truncation=True, max_length=cfg.generation.max_prompt_tokens,
                    add_special_tokens=False)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: (caps[i], len(ids[i])), reverse=True)  # as the decoder
    prompts = [ids[i] for i in order]
    packing = slots.rows_independent(model)

    def alone() -> tuple[slots.SlotState, list[int]]:
        state = slots.SlotState(len(model.model.layers))
        return state, [slots._prefill(model, [p], [i], [1], state)[0] for i, p in enumerate(prompts)]

    def packed() -> tuple[slots.SlotState, list[int]]:
        state, firsts, waiting = slots.SlotState(len(model.model.layers)), [], deque(range(len(prompts)))
        while waiting:
            pack = slots._take_pack(prompts, waiting, cfg.generation.batch_size if packing else 1)
            firsts += slots._prefill(model, [prompts[i] for i in pack], pack, [1] * len(pack), state)
        return state, firsts

    slots._register()
    model.config._attn_implementation = slots.ATTENTION_NAME
    seconds: dict[str, list[float]] = {"alone": [], "packed": []}
    loads = [os.getloadavg()[0]]
    with torch.inference_mode():
        for _ in range(args.rounds):
            results = {}
            for name, run in (("alone", alone), ("packed", packed)):
                started = time.perf_counter()
                results[name] = run()
                seconds[name].append(time.perf_counter() - started)
                loads.append(os.getloadavg()[0])
            (a, first_a), (b, first_b) = results["alone"], results["packed"]
            same = first_a == first_b and all(
                torch.equal(a.keys[k][:, :, :a.length[k[1]]], b.keys[k][:, :, :b.length[k[1]]])
                and torch.equal(a.values[k][:, :, :a.length[k[1]]], b.values[k][:, :, :b.length[k[1]]])
                for k in a.keys)
    tokens = sum(map(len, prompts))
    summary = {"prompts": len(prompts), "prompt_tokens": tokens, "rows_independent": packing,
               "seconds": {k: [round(s, 2) for s in v] for k, v in seconds.items()},
               "alone_over_packed_best": round(min(seconds["alone"]) / min(seconds["packed"]), 2),
               "alone_over_packed_median": round(statistics.median(seconds["alone"]) / statistics.median(seconds["packed"]), 2),
               "caches_and_first_tokens_identical": same, "load_1min_min_max": [min(loads), max(loads)],
               "torch_threads": torch.get_num_threads()}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()

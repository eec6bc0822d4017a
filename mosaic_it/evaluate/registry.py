"""Every eval by name: adding one is writing `run(ctx) -> metrics` and one line here; an eval
that generates also names its `prompts(ctx)`, so that one decoder call can answer all evals.

The names are also the values `evaluate.evals` accepts in params.yaml.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mosaic_it.evaluate import heldout, mosaic_following, pairwise
from mosaic_it.evaluate.context import EvalContext, Metrics, PromptSet
from mosaic_it.evaluate.ifeval import run as ifeval


@dataclass(frozen=True)
class Eval:
    run: Callable[[EvalContext], Metrics]
    prompts: Callable[[EvalContext], PromptSet] | None = None  # None: asks the model nothing


EVALS: dict[str, Eval] = {
    "heldout": Eval(heldout.run),  # loss and perplexity on held-out records
    "mosaic_following": Eval(mosaic_following.run, mosaic_following.prompts),  # format, count, order, mask per rule
    "ifeval": Eval(ifeval.run, ifeval.prompts),  # strict and loose instruction following
    "pairwise": Eval(pairwise.run, pairwise.prompts),  # answers on the pairwise test sets, judged by `compare`
}

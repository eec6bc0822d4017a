"""Every eval by name: adding one is writing `run(ctx) -> metrics` and one line here.

The names are also the values `evaluate.evals` accepts in params.yaml.
"""
from __future__ import annotations

from collections.abc import Callable

from mosaic_it.evaluate import heldout, mosaic_following, pairwise
from mosaic_it.evaluate.context import EvalContext, Metrics
from mosaic_it.evaluate.ifeval import run as ifeval

EVALS: dict[str, Callable[[EvalContext], Metrics]] = {
    "heldout": heldout.run,  # loss and perplexity on held-out records
    "mosaic_following": mosaic_following.run,  # format, count, order, mask compliance per rule
    "ifeval": ifeval.run,  # strict and loose instruction following
    "pairwise": pairwise.run,  # answers on the pairwise test sets, judged by `compare`
}

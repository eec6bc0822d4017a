"""Paired, hierarchical bootstrap of a ratio metric over seeds and evaluation items.

Data: for every arm, seed and item a (numerator, denominator) pair; a metric's value over a set
of items is sum(num) / sum(den) (den = 1 for per-prompt metrics, tokens for held-out loss,
instructions for instruction-level IFEval; an item where the metric is undefined has den = 0).
An arm's value is the mean over seeds of its per-seed values.

One replicate draws the seeds with replacement, then the items with replacement, and applies the
same draw to both arms (paired). Items are crossed with seeds, not nested in them: every seed is
evaluated on the same prompts, so one item draw serves every seed of the replicate. Drawing items
afresh for each seed would treat 3 x 541 answers to 541 prompts as 1,623 independent prompts and
understate how much the result depends on which prompts were asked.

Resampling the two crossed factors independently is Owen's pigeonhole bootstrap (Ann. Appl.
Stat. 2007). It errs wide: the seed x item residual (a model's luck on one prompt) enters through
both the seed draw and the item draw, so with several seeds the interval is conservative
(simulated coverage about 98% at a nominal 95% on 0/1 scores); a wide interval can hide an
effect but never invents one, and the minimum detectable effect beside every verdict says how big
an effect could be hidden.

The interval is the percentile interval of the replicate differences. BCa was considered and not
used: its acceleration needs a jackknife, which has no single definition when two crossed levels
are resampled, and a difference of means over hundreds of items has a nearly symmetric bootstrap
distribution, where the two agree. tests/test_stats_bootstrap.py checks the coverage by simulation.
With a single seed the seed draw is trivial and this is the plain item bootstrap.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 256  # replicates per block: bounds the (replicates x items) weight matrix


@dataclass(frozen=True)
class Replicates:
    estimate: tuple[float, float]  # (baseline, candidate) on the data as observed
    per_seed: tuple[np.ndarray, np.ndarray]  # per-seed values of each arm (nan where undefined)
    differences: np.ndarray  # candidate - baseline, one per usable replicate
    dropped: int  # replicates where an arm had no defined item in any drawn seed


def ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def seed_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring undefined seeds; nan when none is defined."""
    defined = ~np.isnan(values)
    count = defined.sum(axis=-1)
    total = np.where(defined, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def item_weights(rng: np.random.Generator, replicates: int, items: int) -> np.ndarray:
    """How often each item is drawn in each replicate (rows sum to `items`)."""
    draws = rng.integers(0, items, size=(replicates, items))
    offsets = (np.arange(replicates) * items)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=replicates * items).reshape(replicates, items).astype(float)


def paired_bootstrap(num: np.ndarray, den: np.ndarray, n_boot: int, rng_seed: int) -> Replicates:
    """`num`, `den`: arrays of shape (2 arms: baseline then candidate, seeds, items)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if num.shape != den.shape or num.ndim != 3 or num.shape[0] != 2:
        raise ValueError(f"expected (2, seeds, items) arrays, got {num.shape} and {den.shape}")
    _, seeds, items = num.shape
    observed = ratios(num.sum(axis=2), den.sum(axis=2))  # (arm, seed)
    estimate = (float(seed_mean(observed[0])), float(seed_mean(observed[1])))
    stacked = np.concatenate([num, den])  # (4, seeds, items): base num, cand num, base den, cand den
    rng = np.random.default_rng(rng_seed)
    differences = []
    for start in range(0, n_boot, CHUNK):
        size = min(CHUNK, n_boot - start)
        seed_draw = rng.integers(0, seeds, size=(size, seeds))
        weights = item_weights(rng, size, items)
        # One matrix product (BLAS) gives every replicate's weighted sums: (4, replicate, seed).
        sums = (weights @ stacked.reshape(-1, items).T).reshape(size, 4, seeds).transpose(1, 0, 2)
        drawn = np.take_along_axis(sums, seed_draw[None], axis=2)  # the drawn seeds, with repeats
        values = seed_mean(ratios(drawn[:2], drawn[2:]))  # (arm, replicate)
        differences.append(values[1] - values[0])
    diffs = np.concatenate(differences) if differences else np.empty(0)
    usable = diffs[~np.isnan(diffs)]
    return Replicates(estimate, (observed[0], observed[1]), usable, int(len(diffs) - len(usable)))

"""The paired, hierarchical bootstrap: coverage by simulation, verdicts, pairing, determinism, speed of use."""
from __future__ import annotations

import numpy as np
import pytest

from mosaic_it.stats.paired import compare_arrays, compare_metric, compare_win_rate, score_arrays

TRUE_DIFFERENCE = 0.1


def simulated_study(rng, seeds, items, seed_sd):
    """0/1 scores; each prompt has its own difficulty and its own (mean-zero) reaction to the candidate."""
    difficulty = rng.uniform(0.2, 0.7, items)
    reaction = rng.normal(0.0, 0.05, items)
    luck = rng.normal(0.0, seed_sd, (2, seeds, 1))  # a training seed lifts or sinks every prompt
    prob = np.stack([difficulty + luck[0], difficulty + TRUE_DIFFERENCE + reaction + luck[1]])
    num = (rng.random((2, seeds, items)) < np.clip(prob, 0, 1)).astype(float)
    return num, np.ones_like(num)


def coverage(seeds, items, seed_sd, studies=300):
    rng = np.random.default_rng(20251125)
    hits = []
    for k in range(studies):
        num, den = simulated_study(rng, seeds, items, seed_sd)
        result = compare_arrays("m", num, den, "base", "cand", better_when_higher=True, n_boot=400,
                                confidence=0.95, rng_seed=k, label="Mosaic-IT")
        hits.append(result.ci[0] <= TRUE_DIFFERENCE <= result.ci[1])
    return float(np.mean(hits))


def test_one_seed_item_bootstrap_covers_the_true_difference_about_95_percent():
    # 300 studies: a binomial 95% band around 0.95 is about 0.925..0.975; allow some bootstrap slack.
    assert 0.90 <= coverage(seeds=1, items=300, seed_sd=0.0) <= 0.985


def test_three_seed_hierarchical_bootstrap_covers_it_at_least_95_percent_and_errs_wide_only_a_little():
    # Pigeonhole resampling counts the seed x item noise twice, so coverage sits above 95%, not below.
    assert 0.94 <= coverage(seeds=3, items=200, seed_sd=0.02) <= 0.995


def test_identical_arms_give_no_detectable_difference_with_a_positive_mde():
    rng = np.random.default_rng(0)
    scores = [{f"p{i}": (float(rng.random() < 0.4), 1.0) for i in range(120)} for _ in range(3)]
    result = compare_metric("ifeval/prompt_strict", scores, scores, "baseline", "mosaic", n_boot=500)
    assert result.difference == 0.0 and result.ci == (0.0, 0.0)
    assert result.verdict.startswith("no detectable difference (CI covers 0)")
    assert (result.seeds, result.items) == (3, 120)


def test_verdict_direction_follows_the_metric():
    rng = np.random.default_rng(1)
    base = [{f"r{i}": (float(rng.normal(2.0, 0.1)) * 50, 50.0) for i in range(200)} for _ in range(2)]
    lower = [{i: (n - 0.5 * d, d) for i, (n, d) in seed.items()} for seed in base]  # loss 0.5 lower
    loss = compare_metric("heldout/loss", base, lower, "baseline", "mosaic", n_boot=300)
    assert loss.difference == pytest.approx(-0.5) and loss.ci[1] < 0 and loss.verdict == "Mosaic-IT better"
    accuracy = compare_metric("mosaic_following/format", base, lower, "baseline", "mosaic", n_boot=300)
    assert accuracy.verdict == "Mosaic-IT worse"
    assert not loss.higher_is_better and accuracy.higher_is_better


def test_pairing_removes_item_difficulty_from_the_interval():
    # Every prompt differs wildly in difficulty but the candidate is always exactly 0.05 better:
    # a paired analysis sees a zero-width interval at 0.05.
    rng = np.random.default_rng(2)
    base = [{f"p{i}": (v, 1.0) for i, v in enumerate(rng.random(300))}]
    cand = [{i: (n + 0.05, d) for i, (n, d) in base[0].items()}]
    result = compare_metric("m", base, cand, "baseline", "mosaic", n_boot=300)
    assert result.ci == pytest.approx((0.05, 0.05)) and result.verdict == "Mosaic-IT better"


def test_undefined_items_are_absent_not_zero_and_ratio_metrics_weight_by_denominator():
    base = [{"a": (1.0, 1.0), "b": (0.0, 1.0)}, {"a": (3.0, 4.0)}]
    cand = [{"a": (1.0, 1.0), "b": (1.0, 1.0), "c": (0.0, 0.0)}, {"a": (1.0, 4.0), "b": (2.0, 2.0)}]
    num, den, ids = score_arrays([base, cand])
    assert ids == ["a", "b"]  # "c" is defined nowhere
    result = compare_metric("m", base, cand, "baseline", "mosaic", n_boot=200)
    assert result.per_seed == {"baseline": [0.5, 0.75], "mosaic": [1.0, 0.5]}
    assert result.mean == {"baseline": 0.625, "mosaic": 0.75}
    assert result.sd["baseline"] == pytest.approx(np.std([0.5, 0.75], ddof=1))


def test_same_seed_same_interval_other_seed_other_interval():
    rng = np.random.default_rng(3)
    base = [{f"p{i}": (float(rng.random() < 0.5), 1.0) for i in range(100)} for _ in range(3)]
    cand = [{f"p{i}": (float(rng.random() < 0.6), 1.0) for i in range(100)} for _ in range(3)]
    first, again = (compare_metric("m", base, cand, "b", "c", n_boot=300, rng_seed=7) for _ in range(2))
    other = compare_metric("m", base, cand, "b", "c", n_boot=300, rng_seed=8)
    assert first == again and first.ci != other.ci


def test_win_rate_against_parity_counts_ties_as_half():
    outcomes = [{f"p{i}": (1.0 if i < 60 else 0.5 if i < 80 else 0.0, 1.0) for i in range(100)}] * 2
    result = compare_win_rate("pairwise/win_rate", outcomes, "baseline", "mosaic", n_boot=500)
    assert result.mean == {"parity": 0.5, "mosaic": 0.7}
    assert result.difference == pytest.approx(0.2) and result.ci[0] > 0 and result.verdict == "Mosaic-IT better"
    even = [{f"p{i}": (0.5, 1.0) for i in range(50)}]
    assert compare_win_rate("w", even, "b", "c", n_boot=200).verdict.startswith(
        "no detectable difference (CI covers 0: win rate 0.5)")

"""Instructions-per-sample distributions: bounds and shape against their analytic probabilities."""
from __future__ import annotations

import math

import numpy as np
import pytest

from itertools import islice

from mosaic_it.mosaic.counts import BLOCK, UNBOUNDED, WRAP_MODES, count_stream, draw_count

K = 10
DRAWS = 20_000


def draws(mode: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([draw_count(mode, rng, K) for _ in range(DRAWS)])


def normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.mark.parametrize("mode", sorted(set(WRAP_MODES) - {"max_length"}))
def test_counts_stay_within_one_to_k(mode):
    values = draws(mode)
    assert values.min() >= 1 and values.max() <= K


def test_uniform_is_flat():
    shares = np.bincount(draws("uniform"), minlength=K + 1)[1:] / DRAWS
    assert np.all(np.abs(shares - 0.1) < 0.01)


def test_fixed_and_unbounded_modes():
    assert set(draws("fix_max")) == {K}
    assert draw_count("max_length", np.random.default_rng(0), K) == UNBOUNDED


@pytest.mark.parametrize(
    "mode, p_k",
    [
        # P(count == K) = P(offset < 1 | offset admissible) for each offset distribution.
        ("exp", (1 - math.exp(-1)) / (1 - math.exp(-K))),
        ("pareto", (1 - 1 / 3) / (1 - 1 / (K + 2))),  # offset = Lomax(1) - 1
        ("lognormal", normal_cdf(0.0) / normal_cdf(math.log(K))),
        ("logistic2", (1 / (1 + math.exp(-0.5)) - 0.5) / (1 / (1 + math.exp(-K / 2)) - 0.5)),
    ],
)
def test_skewed_modes_favour_k_as_their_distribution_says(mode, p_k):
    values = draws(mode)
    assert abs(np.mean(values == K) - p_k) < 0.015
    counts = np.bincount(values, minlength=K + 1)
    assert counts[K] > counts[K - 1] > counts[1]


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown wrap mode"):
        draw_count("zipf", np.random.default_rng(0), K)


@pytest.mark.parametrize("mode", sorted(WRAP_MODES))
@pytest.mark.parametrize("k", [1, 3, 10, 1000])
def test_the_stream_gives_the_counts_one_draw_at_a_time_gives(mode, k):
    drawn = BLOCK * 2 + 17 if mode == "uniform" else 2_000
    one, many = np.random.default_rng(7), np.random.default_rng(7)
    assert list(islice(count_stream(mode, many, k), drawn)) == [draw_count(mode, one, k) for _ in range(drawn)]


def test_the_stream_names_an_unknown_mode():
    with pytest.raises(ValueError, match="unknown wrap mode 'zipf'"):
        next(count_stream("zipf", np.random.default_rng(0), K))

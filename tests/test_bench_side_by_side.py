"""The side-by-side summary the benchmarks report: pairs won, sign test, geometric-mean speedup and
its bootstrap interval, and whether a difference is inside the noise."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "side_by_side.py"
_SPEC = importlib.util.spec_from_file_location("side_by_side", _PATH)
side_by_side = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(side_by_side)


def test_twice_as_fast_in_every_pair_is_outside_the_noise():
    result = side_by_side.paired_speedup([1.0, 2.0, 3.0, 1.5, 2.5, 1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 3.0, 5.0, 2.0, 4.0, 6.0])
    assert result["new_faster"] == 8 and result["sign_test_p"] == 1 / 256
    assert result["geomean_speedup"] == 2.0 and result["ci95"] == [2.0, 2.0] and not result["inside_noise"]


def test_a_swing_both_ways_is_inside_the_noise_and_a_tie_counts_as_lost():
    result = side_by_side.paired_speedup([1.0, 1.0, 2.0, 1.0], [1.1, 0.9, 2.0, 1.05])
    assert result["new_faster"] == 2 and result["sign_test_p"] == 11 / 16  # P(2 or more of 4 by chance)
    low, high = result["ci95"]
    assert low < 1.0 < high and result["inside_noise"]
    assert result["geomean_speedup"] == pytest.approx((1.1 * 0.9 * 1.0 * 1.05) ** 0.25, abs=1e-4)


def test_the_interval_is_the_same_for_the_same_seed_and_pairs_are_required():
    times = ([6.8, 6.5, 8.3, 8.5, 6.6], [7.1, 7.3, 9.4, 6.8, 6.5])
    assert side_by_side.paired_speedup(*times) == side_by_side.paired_speedup(*times)
    with pytest.raises(ValueError):
        side_by_side.paired_speedup([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        side_by_side.paired_speedup([], [])


def test_each_decoder_row_says_whether_it_beat_the_baseline_beyond_the_noise():
    table = side_by_side.rows({"today": [2.0, 2.2, 2.1], "new": [1.0, 1.2, 1.0]},
                              {"today": ["a", "b"], "new": ["a", "c"]}, "today", prompts=2)
    today, new = table
    assert today["vs_baseline_paired"] is None and today["same_answer_as_baseline"] == 2
    assert new["vs_baseline_paired"]["new_faster"] == 3 and not new["vs_baseline_paired"]["inside_noise"]
    assert new["same_answer_as_baseline"] == 1

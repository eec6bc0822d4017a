"""Decoders timed side by side: alternating rounds in one process, so machine load hits all alike,
then prompts/s and agreement with a baseline decoder, as rows and as a markdown table."""
from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np


def alternate(decoders: dict[str, Callable[[], list[str]]], rounds: int
              ) -> tuple[dict[str, list[float]], dict[str, list[str]], list[float]]:
    """Seconds per round and the last answers of every decoder, and the 1-minute load averages
    seen before the first round and after every decoder's turn."""
    seconds: dict[str, list[float]] = {name: [] for name in decoders}
    answers: dict[str, list[str]] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(rounds):
        for name, decode in decoders.items():
            started = time.perf_counter()
            answers[name] = decode()
            seconds[name].append(time.perf_counter() - started)
            loads.append(os.getloadavg()[0])
    return seconds, answers, loads


def agree(a: list[str], b: list[str]) -> int:
    return sum(x == y for x, y in zip(a, b))


def rows(seconds: dict[str, list[float]], answers: dict[str, list[str]], baseline: str, prompts: int) -> list[dict]:
    best = min(seconds[baseline])
    return [{"decoder": name, "seconds": times, "rounds": len(times), "best_prompts_per_s": prompts / min(times),
             "median_prompts_per_s": prompts / statistics.median(times), "vs_baseline_best": best / min(times),
             "vs_baseline_paired": None if name == baseline else paired_speedup(times, seconds[baseline]),
             "same_answer_as_baseline": agree(answers[name], answers[baseline])}
            for name, times in seconds.items()]


def print_table(table: list[dict], baseline_label: str, prompts: int) -> None:
    print(f"| decoder | prompts/s (best) | prompts/s (median) | vs {baseline_label} (best) | "
          f"same answer as {baseline_label} |")
    print("|---|---:|---:|---:|---:|")
    for row in table:
        print(f"| {row['decoder']} | {row['best_prompts_per_s']:.3f} | {row['median_prompts_per_s']:.3f} | "
              f"{row['vs_baseline_best']:.2f}x | {row['same_answer_as_baseline']}/{prompts} |")


def paired_speedup(new: Sequence[float], old: Sequence[float], replicates: int = 10_000, seed: int = 0) -> dict:
    """How much faster `new` ran than `old`, from rounds run side by side (new[i] beside old[i]):
    the pairs `new` won (a tie counts as lost), the one-sided sign test's p that it won that many
    by chance, and the geometric mean of old/new with its 95% percentile bootstrap interval over
    the pairs. An interval that holds 1.0 is inside the noise."""
    if len(new) != len(old) or not new:
        raise ValueError(f"{len(new)} and {len(old)} times: pairs are needed")
    pairs = len(new)
    won = sum(a < b for a, b in zip(new, old))
    logs = np.log(np.asarray(old, dtype=float) / np.asarray(new, dtype=float))
    draws = logs[np.random.default_rng(seed).integers(0, pairs, size=(replicates, pairs))].mean(axis=1)
    low, high = np.exp(np.percentile(draws, [2.5, 97.5]))
    return {"pairs": pairs, "new_faster": won,
            "sign_test_p": sum(math.comb(pairs, k) for k in range(won, pairs + 1)) / 2 ** pairs,
            "geomean_speedup": round(float(np.exp(logs.mean())), 4),
            "ci95": [round(float(low), 4), round(float(high), 4)], "inside_noise": bool(low <= 1.0 <= high)}

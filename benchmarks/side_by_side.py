"""Decoders timed side by side: alternating rounds in one process, so machine load hits all alike,
then prompts/s and agreement with a baseline decoder, as rows and as a markdown table."""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable


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
             "same_answer_as_baseline": agree(answers[name], answers[baseline])}
            for name, times in seconds.items()]


def print_table(table: list[dict], baseline_label: str, prompts: int) -> None:
    print(f"| decoder | prompts/s (best) | prompts/s (median) | vs {baseline_label} (best) | "
          f"same answer as {baseline_label} |")
    print("|---|---:|---:|---:|---:|")
    for row in table:
        print(f"| {row['decoder']} | {row['best_prompts_per_s']:.3f} | {row['median_prompts_per_s']:.3f} | "
              f"{row['vs_baseline_best']:.2f}x | {row['same_answer_as_baseline']}/{prompts} |")

"""How long the study statistics take at the issue's full-study scale.

1. One metric: the paired, hierarchical bootstrap over 3 seeds x 541 items (IFEval's size),
   2,000 replicates; and over 3 seeds x 5,000 held-out records (a ratio metric).
2. A whole `analyze_study` on synthetic cells of full-study size (3 seeds, baseline and mosaic,
   541 IFEval prompts with their real instruction ids, 10 probes per mosaic rule, 500 held-out
   records, 2,000 replicates), report and plot included.
Each is timed `--repeats` times (wall and CPU seconds); prints JSON. docs/benchmarks.md records the figures.

    .venv/bin/python benchmarks/bench_bootstrap.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IFEVAL = ROOT / "data" / "eval" / "ifeval_input_data.jsonl"


def timed(fn, repeats: int) -> dict:
    """Wall and CPU seconds; on a busy machine CPU time is the fairer figure."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {"wall_median_s": statistics.median(wall), "wall_min_s": min(wall), "wall_max_s": max(wall),
            "cpu_median_s": statistics.median(cpu), "n": repeats}


def one_metric(items: int, ratio: bool) -> None:
    from mosaic_it.stats.paired import compare_arrays

    rng = np.random.default_rng(0)
    den = rng.integers(20, 400, (2, 3, items)).astype(float) if ratio else np.ones((2, 3, items))
    num = rng.random((2, 3, items)) * den
    compare_arrays("m", num, den, "baseline", "mosaic", better_when_higher=True, n_boot=2000, confidence=0.95,
                   rng_seed=0, label="Mosaic-IT")


def write_cells(root: Path) -> dict:
    from mosaic_it.evaluate.items import write_items
    from mosaic_it.evaluate.mosaic_following import probe_targets
    from mosaic_it.jsonl import write_json
    from mosaic_it.study.cells import CellDirs

    prompts = [json.loads(line) for line in IFEVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = np.random.default_rng(1)
    cells = {}
    for seed in range(3):
        for arm in ("baseline", "mosaic"):
            eval_dir, train_dir = root / f"s{seed}" / "evaluate" / arm, root / f"s{seed}" / "train" / arm
            ifeval = []
            for row in prompts:
                oks = [bool(rng.random() < 0.4) for _ in row["instruction_id_list"]]
                scores = {"prompt_strict": (float(all(oks)), 1.0), "instruction_strict": (float(sum(oks)), float(len(oks)))}
                scores.update({f"strict/{i}": (float(ok), 1.0) for i, ok in zip(row["instruction_id_list"], oks)})
                ifeval.append((str(row["key"]), scores))
            write_items(eval_dir, "ifeval", ifeval)
            probes = []
            for strategy, rule in probe_targets():
                key = strategy if rule is None else f"{strategy}/{rule}"
                for k in range(10):
                    ok = float(rng.random() < 0.5)
                    probes.append((f"{key}#{k}", {"count": (ok, 1.0), f"by_rule/{key}/count": (ok, 1.0),
                                                  f"by_rule/{key}/{strategy if strategy != 'order' else 'kendall_tau'}": (ok, 1.0)}))
            write_items(eval_dir, "mosaic_following", probes)
            write_items(eval_dir, "heldout", [(str(k), {"loss": (float(rng.random() * 100), 50.0)}) for k in range(500)])
            write_json(train_dir / "metrics.json", {"train/steps": 10.0, "cost/device_hours": 0.1})
            cells[(arm, seed)] = CellDirs(train_dir, eval_dir)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from mosaic_it.study.analyze import analyze_study

    result = {
        "one_metric_3x541_2000": timed(lambda: one_metric(541, False), args.repeats),
        "one_metric_ratio_3x5000_2000": timed(lambda: one_metric(5000, True), args.repeats),
    }
    with tempfile.TemporaryDirectory() as tmp:
        cells = write_cells(Path(tmp))
        summary = analyze_study(cells, "baseline", "mosaic", Path(tmp) / "out", n_boot=2000)
        comparisons = json.loads(summary.summary.read_text(encoding="utf-8"))
        result["analyze_study_full_size"] = timed(
            lambda: analyze_study(cells, "baseline", "mosaic", Path(tmp) / "out", n_boot=2000), max(1, args.repeats // 2))
        result["analyze_study_full_size"]["comparisons"] = (
            len(comparisons["headline"]) + len(comparisons["secondary"])
            + sum(len(rows) for rows in comparisons["breakdowns"].values()))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

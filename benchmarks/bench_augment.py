"""`mosaic-it augment` end to end, as a user runs it, against one batched tokenization pass.

Each measured thing is a fresh process timed from outside (wall clock and that process's own peak
RSS), in one run, alternating: tokenization pass, augment command, tokenization pass, augment
command. The tokenization pass is a process that reads the same JSON file (with orjson, as augment
does), loads the same tokenizer and counts the tokens of every record (instruction + input + output) in batches through
the Rust tokenizer: the least any token-budgeted augmentation must do. The augment command is the
CLI with the issue's settings (4 epochs, uniform <= 10 instructions, 2,000-token budget, both
strategies), stats and plot included.

`--reference DIR` also times, in the same rounds, the paper's reference implementation
(`mosaic_main.py` and `mosaic_formats_rules.py` from the authors' Mosaic-IT repository, which this
project does not ship: check them out into DIR yourself) with the same settings, run offline on
the embedded tokenizer's local directory. Its `for epo in tqdm(args.epo_num)` iterates an int and
fails as published; patch that line to `tqdm(range(args.epo_num))` and nothing else. Without
`--reference`, the ratio is taken against the 196.6 s the issue's author measured.

    .venv/bin/python benchmarks/bench_augment.py [--data ../shared/data/alpaca_cleaned.json]

augment finishes samples in a second process only where other processes left a core free while
it loaded and counted (mosaic_it.mosaic.core_watch): on a machine kept busy by other jobs it stays in one process,
so only a quiet run shows what the second core gives; `load_average_*` below say how busy it was.

`--against DIR` also times, in the same rounds, the augment command run from another copy of the
sources (DIR holds its `mosaic_it` and params.yaml, e.g. `git archive OLD mosaic_it params.yaml |
tar -x -C DIR`), for a before/after ratio measured side by side, and checks the outputs are equal.
`--verify` also times `mosaic-it verify` on each output, this copy's and the other's, by their own code.
Each command's CPU seconds (user + system, its forked helpers included) come beside its wall time:
on a noisy machine they vary less, and medians of both are given for the before/after pair, with,
round by round, the pairs this copy won, the sign test and the geometric-mean speedup with its 95%
bootstrap interval (`side_by_side.paired_speedup`): whether the difference is inside the noise. So do
the core-seconds the whole machine spent idle while it ran: on a quiet machine, wall time x cores
is about CPU seconds + idle core-seconds, and the idle share is what better overlap could win.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from side_by_side import paired_speedup

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alpaca_cleaned.json"
REFERENCE_SECONDS = 196.6  # the reference mosaic_main.py, same settings (issue 10), where not run here
REFERENCE_ARGS = ["--max_length", "2000", "--epo_num", "4", "--wrap_mode", "uniform", "--wrap_max_num", "10",
                  "--version", "both"]
AUGMENT_ARGS = ["--epochs", "4", "--wrap-mode", "uniform", "--max-instructions", "10", "--max-tokens", "2000",
                "--strategy", "both", "--seed", "0"]

# The file is read with orjson, as augment reads it: until run L the pass used the json module,
# 0.25-0.35 s slower on this file, which flattered every ratio against it by 5-7%.
TOKENIZE_PASS = """
import json, sys, time
import orjson
from mosaic_it.models.tokenizer import count_tokens, load_counting_tokenizer
from mosaic_it.records import instruction_text
with open(sys.argv[1], "rb") as handle:
    records = orjson.loads(handle.read())
tokenizer = load_counting_tokenizer(None)
started = time.perf_counter()
tokens = count_tokens(tokenizer, [instruction_text(r) + "\\n" + r["output"] for r in records])
print(json.dumps({"records": len(records), "tokens": int(tokens.sum()), "tokenize_s": time.perf_counter() - started}))
"""


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def timed(command: list[str], pythonpath: Path | None = None, cwd: Path = ROOT) -> dict:
    """Wall seconds and peak RSS of one child process, with its last stdout line."""
    # As a user runs them: the Rust tokenizer's own thread pool on, whatever this shell set
    # (scripts/test.sh turns it off; a pass on one thread would flatter every ratio against it).
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    env["HF_HUB_OFFLINE"] = "1"
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    idle_before = idle_core_seconds()
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    idle_after = idle_core_seconds()
    if status != 0:
        raise SystemExit(f"{command[0]} failed with status {status}")
    # CPU seconds of the process and of the children it waited for (augment's forked helpers).
    cpu = usage.ru_utime + usage.ru_stime
    idle = None if idle_before is None or idle_after is None else idle_after - idle_before
    return {"seconds": seconds, "cpu_s": cpu, "idle_core_s": idle, "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "stdout": out.strip().splitlines()[-1]}


def idle_core_seconds() -> float | None:
    """Core-seconds the whole machine has spent idle since boot (Linux): the difference over a
    command is, on a quiet machine, the core time the command left unused."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
        return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")  # idle and iowait
    except (OSError, ValueError, IndexError):
        return None


def rounded(runs: list[dict], key: str) -> list[float | None]:
    return [None if r[key] is None else round(r[key], 2) for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--against", type=Path, help="another copy of the sources to time beside this one")
    parser.add_argument("--reference", type=Path, help="a folder holding the reference mosaic_main.py (see above)")
    parser.add_argument("--verify", action="store_true", help="also time `mosaic-it verify` on each output")
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "mosaic-it")
    tokenize, augment, against, reference, verify, against_verify = [], [], [], [], [], []
    if args.reference:
        from mosaic_it.models.embedded import embedded_tokenizer_dir

        tokenizer_dir = str(embedded_tokenizer_dir())
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        def command(name: str, params: Path = ROOT / "params.yaml") -> list[str]:
            return [cli, "augment", str(args.data), "--output", str(Path(folder) / name / "mosaic.jsonl"),
                    *AUGMENT_ARGS, "--stats-dir", str(Path(folder) / name / "stats"), "--params", str(params)]

        def verify_command(name: str) -> list[str]:
            return [cli, "verify", str(Path(folder) / name / "mosaic.jsonl"), "--source", str(args.data)]

        for _ in range(args.rounds):
            tokenize.append(timed([sys.executable, "-c", TOKENIZE_PASS, str(args.data)]))
            augment.append(timed(command("this")))
            if args.against:
                # The other copy's own params.yaml where it has one: its config may predate ours.
                params = args.against / "params.yaml"
                against.append(timed(command("against", *[params.resolve()] * params.exists()), args.against.resolve()))
            if args.verify:
                verify.append(timed(verify_command("this")))
                if args.against:
                    against_verify.append(timed(verify_command("against"), args.against.resolve()))
            if args.reference:
                reference.append(timed([sys.executable, "mosaic_main.py", "--data_path", str(args.data.resolve()),
                                        "--save_path", str(Path(folder) / "reference.json"),
                                        "--model_name_or_path", tokenizer_dir, *REFERENCE_ARGS],
                                       cwd=args.reference.resolve()))
                reference[-1]["samples"] = len(json.loads((Path(folder) / "reference.json").read_bytes()))
        stats = json.loads((Path(folder) / "this" / "stats" / "stats.json").read_text())
        same = {name: (Path(folder) / "this" / name).read_bytes() == (Path(folder) / "against" / name).read_bytes()
                for name in ("mosaic.jsonl", "stats/stats.json", "stats/stats.png")} if args.against else {}
    best_tokenize = min(r["seconds"] for r in tokenize)
    best_augment = min(r["seconds"] for r in augment)
    print(json.dumps({
        "records": json.loads(tokenize[0]["stdout"])["records"],
        "samples": stats["samples"],
        "tokenize_pass_process_s": [round(r["seconds"], 2) for r in tokenize],
        "tokenize_pass_in_process_s": [round(json.loads(r["stdout"])["tokenize_s"], 2) for r in tokenize],
        "tokenize_pass_cpu_s": rounded(tokenize, "cpu_s"),
        "tokenize_pass_idle_core_s": rounded(tokenize, "idle_core_s"),
        "augment_cli_s": [round(r["seconds"], 2) for r in augment],
        "augment_cli_cpu_s": [round(r["cpu_s"], 2) for r in augment],
        "augment_cli_idle_core_s": rounded(augment, "idle_core_s"),
        "augment_over_tokenize_pass_best_of_each": round(best_augment / best_tokenize, 2),
        **({"reference_s": [round(r["seconds"], 2) for r in reference],
            "reference_samples": [r["samples"] for r in reference],
            "reference_peak_rss_mb": max(r["peak_rss_mb"] for r in reference),
            "reference_over_augment_best_of_each": round(min(r["seconds"] for r in reference) / best_augment, 2)}
           if reference else {"reference_s_from_issue": REFERENCE_SECONDS,
                              "speedup_vs_reference_best": round(REFERENCE_SECONDS / best_augment, 1)}),
        **({"against_cli_s": [round(r["seconds"], 2) for r in against],
            "against_cli_cpu_s": [round(r["cpu_s"], 2) for r in against],
            "against_cli_idle_core_s": rounded(against, "idle_core_s"),
            "against_over_augment_best_of_each": round(min(r["seconds"] for r in against) / best_augment, 2),
            "against_over_augment_median": round(median(against, "seconds") / median(augment, "seconds"), 3),
            "against_over_augment_median_cpu": round(median(against, "cpu_s") / median(augment, "cpu_s"), 3),
            # Round by round (this copy's i-th run beside the other's): inside the noise or not.
            "this_vs_against_paired": paired_speedup([r["seconds"] for r in augment], [r["seconds"] for r in against]),
            "this_vs_against_paired_cpu": paired_speedup([r["cpu_s"] for r in augment], [r["cpu_s"] for r in against]),
            "against_output_identical_per_file": same} if against else {}),
        **({"verify_cli_s": [round(r["seconds"], 2) for r in verify],
            "verify_cli_cpu_s": [round(r["cpu_s"], 2) for r in verify]} if verify else {}),
        **({"against_verify_cli_s": [round(r["seconds"], 2) for r in against_verify],
            "against_verify_over_verify_median": round(median(against_verify, "seconds") / median(verify, "seconds"), 2)}
           if against_verify else {}),
        "augment_peak_rss_mb": max(r["peak_rss_mb"] for r in augment),
        "tokenize_peak_rss_mb": max(r["peak_rss_mb"] for r in tokenize),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }, indent=2))


if __name__ == "__main__":
    main()

"""Augmentation cost against one batched tokenization pass of the same data.

Runs, each in a fresh process so that peak memory is its own: a tokenization pass, the 4-epoch
augmentation of all records, and a second tokenization pass (to bracket machine noise). Prints a
JSON summary; docs/benchmarks.md records the figures.

    .venv/bin/python benchmarks/bench_augment.py [--data ../shared/data/alpaca_cleaned.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alpaca_cleaned.json"


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def tokenize_pass(data: Path) -> dict:
    from mosaic_it.models.tokenizer import load_tokenizer
    from mosaic_it.records import instruction_text

    records = json.loads(data.read_text(encoding="utf-8"))
    tokenizer = load_tokenizer(None)
    texts = [instruction_text(r) + "\n" + r["output"] for r in records]
    started = time.perf_counter()
    tokens = 0
    for start in range(0, len(texts), 2048):
        encoded = tokenizer(texts[start : start + 2048], add_special_tokens=False)["input_ids"]
        tokens += sum(len(ids) for ids in encoded)
    return {"seconds": time.perf_counter() - started, "tokens": tokens, "records": len(records)}


def augment_run(data: Path, epochs: int) -> dict:
    from mosaic_it.config.augment import AugmentConfig
    from mosaic_it.mosaic.augment import run_augment

    with tempfile.TemporaryDirectory() as folder:
        cfg = AugmentConfig(input=str(data), output=f"{folder}/mosaic.jsonl", epochs=epochs)
        started = time.perf_counter()
        report = run_augment(cfg, show_progress=False)
        seconds = time.perf_counter() - started
        size = Path(cfg.output).stat().st_size
    return {"seconds": seconds, "samples": report.samples, "exact_budget_checks": report.exact_budget_checks,
            "skipped_too_long": report.skipped_too_long, "output_bytes": size}


def child(part: str, data: Path, epochs: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--part", part, "--data", str(data), "--epochs", str(epochs)],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--part", choices=["tokenize", "augment"])
    args = parser.parse_args()
    if args.part:
        result = tokenize_pass(args.data) if args.part == "tokenize" else augment_run(args.data, args.epochs)
        result["peak_rss_bytes"] = peak_rss_bytes()
        print(json.dumps(result))
        return
    first = child("tokenize", args.data, args.epochs)
    augmented = child("augment", args.data, args.epochs)
    second = child("tokenize", args.data, args.epochs)
    baseline = (first["seconds"] + second["seconds"]) / 2
    print(json.dumps({
        "records": first["records"],
        "epochs": args.epochs,
        "tokenize_seconds": [round(first["seconds"], 2), round(second["seconds"], 2)],
        "augment_seconds": round(augmented["seconds"], 2),
        "ratio_augment_to_tokenize": round(augmented["seconds"] / baseline, 2),
        "augment_peak_rss_mb": round(augmented["peak_rss_bytes"] / 2**20),
        "tokenize_peak_rss_mb": round(first["peak_rss_bytes"] / 2**20),
        "samples": augmented["samples"],
        "exact_budget_checks": augmented["exact_budget_checks"],
        "skipped_too_long": augmented["skipped_too_long"],
        "output_mb": round(augmented["output_bytes"] / 2**20, 1),
    }, indent=2))


if __name__ == "__main__":
    main()

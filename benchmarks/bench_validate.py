"""Time the validate stage on the bundled sample and on the full cleaned Alpaca file.

Each file is validated in a fresh process (so peak memory is its own): first phase by phase
(read, tokenize into the GX table, Great Expectations run with data docs, whole stage again end to
end with the tokenizer already loaded), then the figures are printed as JSON; docs/benchmarks.md
records them.

    .venv/bin/python benchmarks/bench_validate.py [--data FILE ...]
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
DEFAULT_DATA = [ROOT / "data" / "alpaca_sample.json", ROOT.parent / "shared" / "data" / "alpaca_cleaned.json"]


def measure(data: Path) -> dict:
    from mosaic_it.config.data import ValidateConfig
    from mosaic_it.data.frame import build_frame
    from mosaic_it.data.gx_run import run_suite
    from mosaic_it.data.ingest import read_records
    from mosaic_it.data.suite import build_checks
    from mosaic_it.data.validate import run_validation
    from mosaic_it.models.tokenizer import load_tokenizer

    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ValidateConfig(input=str(data), output_dir=tmp, max_rejected_fraction=1.0)
        started = time.perf_counter()
        ingest = read_records(data)
        seconds["read"] = time.perf_counter() - started

        started = time.perf_counter()
        load_tokenizer(None)
        seconds["load tokenizer"] = time.perf_counter() - started

        started = time.perf_counter()
        frame = build_frame([r for r in ingest.records if r.fault is None], lambda: load_tokenizer(None))
        seconds["tokenize + table"] = time.perf_counter() - started

        started = time.perf_counter()
        run_suite(frame, build_checks(cfg), Path(tmp) / "docs")
        seconds["great expectations + data docs"] = time.perf_counter() - started

        started = time.perf_counter()
        report = run_validation(cfg)
        seconds["whole stage (tokenizer loaded)"] = time.perf_counter() - started
    return {
        "data": str(data),
        "records": report.total,
        "valid": report.valid,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "checks": len(build_checks(cfg)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, nargs="*", default=DEFAULT_DATA)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    results = []
    for data in args.data:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--one", str(data)], capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["process_seconds"] = round(time.perf_counter() - started, 2)
        results.append(result)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

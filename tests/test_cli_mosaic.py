"""`mosaic-it augment`, `verify` and `stats` as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mosaic_it.jsonl import iter_jsonl, write_jsonl

CLI = [str(Path(sys.executable).parent / "mosaic-it")]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def source(tmp_path_factory, sample_data) -> Path:
    path = tmp_path_factory.mktemp("cli") / "train.jsonl"
    write_jsonl(path, json.loads(sample_data.read_text(encoding="utf-8"))[:300])
    return path


def test_augment_verify_stats_round_trip(tmp_path, source, repo_root):
    out = tmp_path / "out.jsonl"
    result = run("augment", str(source), "--output", str(out), "--epochs", "4", "--wrap-mode", "uniform",
                 "--max-instructions", "10", "--max-tokens", "2048", "--strategy", "both", "--seed", "0",
                 "--stats-dir", str(tmp_path / "stats"), cwd=repo_root)
    assert result.returncode == 0, result.stderr
    assert "samples from 300 records over 4 epoch(s)" in result.stdout
    assert {s["mosaic"]["epoch"] for s in iter_jsonl(out)} == {0, 1, 2, 3}

    verified = run("verify", str(out), "--source", str(source), cwd=repo_root)
    assert verified.returncode == 0, verified.stderr
    assert "verified" in verified.stdout

    stats = run("stats", str(out), "--out-dir", str(tmp_path / "s2"), cwd=repo_root)
    assert stats.returncode == 0, stats.stderr
    summary = json.loads((tmp_path / "s2" / "stats.json").read_text())
    assert summary["samples"] == sum(summary["per_strategy"].values())
    assert sum(summary["instructions_per_sample"]["histogram"]["counts"]) == summary["samples"]
    assert (tmp_path / "s2" / "stats.png").stat().st_size > 10_000


def test_verify_exits_non_zero_on_a_violation(tmp_path, source, repo_root):
    out = tmp_path / "out.jsonl"
    assert run("augment", str(source), "--output", str(out), "--epochs", "1", "--stats-dir", str(tmp_path / "st"),
               cwd=repo_root).returncode == 0
    samples = list(iter_jsonl(out))
    samples[3]["output"] = samples[3]["output"] + " (edited)"
    write_jsonl(out, samples)
    result = run("verify", str(out), "--source", str(source), cwd=repo_root)
    assert result.returncode == 1
    assert f"{out}:4: output differs" in result.stderr
    assert "Traceback" not in result.stderr


def test_augment_bad_input_is_one_line_naming_file_and_line(tmp_path, repo_root):
    missing = run("augment", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o.jsonl"), cwd=repo_root)
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr and "Traceback" not in missing.stderr

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n', encoding="utf-8")
    result = run("augment", str(broken), "--output", str(tmp_path / "o.jsonl"), cwd=repo_root)
    assert result.returncode == 2
    assert f"{broken}:2:" in result.stderr and "validate" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_params_yaml_and_overrides_feed_the_command(tmp_path, source, repo_root):
    params = tmp_path / "params.yaml"
    params.write_text(
        f"augment:\n  input: {source}\n  output: {tmp_path / 'p.jsonl'}\n  stats_dir: {tmp_path / 'pst'}\n  epochs: 1\n",
        encoding="utf-8",
    )
    result = run("augment", "--params", str(params), "-S", "augment.strategy=format", cwd=repo_root)
    assert result.returncode == 0, result.stderr
    assert {s["mosaic"]["strategy"] for s in iter_jsonl(tmp_path / "p.jsonl")} == {"format"}


def test_a_bad_option_value_is_a_usage_error_not_a_traceback(tmp_path, repo_root):
    result = run("augment", "--max-tokens", "8", "--output", str(tmp_path / "o.jsonl"), cwd=repo_root)
    assert result.returncode == 2
    assert "Invalid value for '--max-tokens'" in result.stderr and "Traceback" not in result.stderr

"""Bad input through the real `mosaic-it` console script: exit codes and one-line messages, no tracebacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mosaic_it.jsonl import iter_jsonl

MOSAIC_IT = Path(sys.executable).parent / "mosaic-it"


def cli(*args, cwd):
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([str(MOSAIC_IT), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def error_line(done) -> str:
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("empty.json", b"", "empty.json: file is empty"),
        ("broken.json", b'[\n{"instruction": "a", "output": "b"},\n{"instruction": "c",, "output": "d"}\n]',
         "broken.json:3: invalid JSON array"),
        ("object.json", b'{\n "data": [{"instruction": "a", "output": "b"}]\n}\n', "object.json: top level is a JSON object"),
        ("latin1.json", b'[{"instruction": "caf\xe9", "output": "b"}]', "latin1.json:1: not valid UTF-8"),
    ],
)
def test_file_level_faults_exit_2_with_one_line(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    done = cli("validate", path, "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 2
    # e.g. "error: /tmp/.../broken.json:3: invalid JSON array: Expecting property name ..."
    assert error_line(done).startswith(f"error: {path}{expected[len(name):]}")


def test_missing_file_exits_2(tmp_path):
    done = cli("validate", tmp_path / "absent.jsonl", "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 2
    assert error_line(done) == f"error: {tmp_path / 'absent.jsonl'}: no such file"


@pytest.fixture(scope="module")
def messy_jsonl(tmp_path_factory):
    lines = [
        b'{"instruction": "Name a colour.", "output": "Blue."}',
        b'{"instruction": "broken",',
        b'{"instruction": "\xc3\x28", "output": "x"}',
        b'{"instruction": null, "output": "x"}',
        b'{"instruction": "x"}',
        b'{"instruction": ["x"], "output": "y"}',
        b'{"instruction": "", "output": "y"}',
        b'{"instruction": "Name a colour.", "output": "Blue."}',
        b'{"instruction": "nul\\u0000", "output": "y"}',
        json.dumps({"instruction": "long", "output": "z" * 70}).encode(),
        json.dumps({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}).encode(),
        json.dumps({"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"},
                                      {"from": "human", "value": "Q"}]}).encode(),
    ]
    path = tmp_path_factory.mktemp("messy") / "messy.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


EXPECTED_REASONS = {
    1: ["malformed_json_line"],
    2: ["invalid_utf8"],
    3: ["instruction_null"],
    4: ["output_missing"],
    5: ["instruction_not_a_string"],
    6: ["instruction_empty"],
    7: ["exact_duplicate"],
    8: ["instruction_control_characters"],
    9: ["output_too_long"],
    11: ["multi_turn_conversation"],
}


@pytest.mark.slow
def test_record_faults_are_rejected_and_the_run_goes_on(messy_jsonl, tmp_path, repo_root):
    out = tmp_path / "out"
    done = cli("validate", messy_jsonl, "--output-dir", out, "--params", repo_root / "params.yaml",
               "-S", "validate.max_output_chars=64", "-S", "validate.max_rejected_fraction=1.0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Validated 12 records" in done.stdout and "2 valid, 10 rejected" in done.stdout
    rejected = {row["position"]: (row["line"], row["reasons"]) for row in iter_jsonl(out / "rejected.jsonl")}
    assert rejected == {pos: (pos + 1, reasons) for pos, reasons in EXPECTED_REASONS.items()}
    assert list(iter_jsonl(out / "valid.jsonl")) == [
        {"instruction": "Name a colour.", "input": "", "output": "Blue."},
        {"instruction": "Q", "input": "", "output": "A"},
    ]
    report = json.loads((out / "report.json").read_text())
    assert (report["total"], report["valid"], report["rejected"]) == (12, 2, 10)
    assert (out / "data_docs" / "index.html").stat().st_size > 5000


@pytest.mark.slow
def test_rejected_share_threshold_fails_but_writes_outputs(messy_jsonl, tmp_path, repo_root):
    out = tmp_path / "out"
    done = cli("validate", messy_jsonl, "--output-dir", out, "--params", repo_root / "params.yaml", cwd=tmp_path)
    assert done.returncode == 2
    line = error_line(done)
    # the 70-character output is within the default bounds, so 9 (not 10) records are rejected
    assert line.startswith(f"error: {messy_jsonl}: 9 of 12 records rejected (75.0%)")
    assert "max_rejected_fraction=0.2" in line
    assert len(list(iter_jsonl(out / "rejected.jsonl"))) == 9
    assert json.loads((out / "report.json").read_text())["rejected"] == 9


def test_bad_override_is_a_one_line_config_error(tmp_path, repo_root):
    done = cli("validate", "--params", repo_root / "params.yaml", "-S", "validate.max_tokens=-1", cwd=tmp_path)
    assert done.returncode == 2
    assert "validate.max_tokens" in error_line(done)

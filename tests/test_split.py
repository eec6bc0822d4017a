"""The held-out split: deterministic, disjoint, complete, stable under unrelated changes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mosaic_it.config.data import SplitConfig
from mosaic_it.data.split import choose_heldout, heldout_size, run_split
from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import iter_jsonl, write_jsonl


def records(n: int, tag: str = "") -> list[dict[str, str]]:
    return [{"instruction": f"Question {tag}{i}?", "input": "", "output": f"Answer {i}."} for i in range(n)]


@pytest.fixture
def valid_file(tmp_path):
    path = tmp_path / "valid.jsonl"
    write_jsonl(path, records(200))
    return path


def split(path, out, **kw):
    return run_split(SplitConfig(input=str(path), output_dir=str(out), **kw))


def test_parts_are_disjoint_complete_and_ordered(valid_file, tmp_path):
    report = split(valid_file, tmp_path / "s", heldout_fraction=0.1, seed=3)
    info = json.loads((tmp_path / "s" / "split.json").read_text())
    source = list(iter_jsonl(valid_file))
    train = list(iter_jsonl(tmp_path / "s" / "train.jsonl"))
    heldout = list(iter_jsonl(tmp_path / "s" / "heldout.jsonl"))
    assert (report.total, report.train, report.heldout) == (200, 180, 20)
    assert (info["train"], info["heldout"], info["seed"], info["heldout_fraction"]) == (180, 20, 3, 0.1)
    assert not set(info["train_ids"]) & set(info["heldout_ids"])
    assert sorted(info["train_ids"] + info["heldout_ids"]) == list(range(200))
    assert info["train_ids"] == sorted(info["train_ids"]) and info["heldout_ids"] == sorted(info["heldout_ids"])
    assert train == [source[i] for i in info["train_ids"]]
    assert heldout == [source[i] for i in info["heldout_ids"]]


def test_same_input_and_seed_give_identical_files(valid_file, tmp_path):
    split(valid_file, tmp_path / "a", seed=7)
    split(valid_file, tmp_path / "b", seed=7)
    split(valid_file, tmp_path / "c", seed=8)
    for name in ("train.jsonl", "heldout.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "heldout.jsonl").read_bytes() != (tmp_path / "c" / "heldout.jsonl").read_bytes()


def test_assignment_follows_content_not_position():
    base = records(400)
    held = {json.dumps(base[i]) for i in choose_heldout(base, 0.1, seed=0)}
    shuffled = list(reversed(base))
    assert {json.dumps(shuffled[i]) for i in choose_heldout(shuffled, 0.1, seed=0)} == held
    # Adding unrelated records moves few held-out records back into training.
    grown = base + records(40, tag="new ")
    held_after = {json.dumps(grown[i]) for i in choose_heldout(grown, 0.1, seed=0)}
    assert len(held & held_after) >= 0.85 * len(held)


@pytest.mark.parametrize(
    "total, fraction, expected",
    [(0, 0.05, 0), (1, 0.5, 0), (2, 0.01, 1), (10, 0.0, 0), (10, 0.05, 1), (10, 0.99, 9), (2000, 0.05, 100)],
)
def test_heldout_size(total, fraction, expected):
    assert heldout_size(total, fraction) == expected


def test_split_refuses_unvalidated_input(tmp_path):
    path = tmp_path / "raw.jsonl"
    path.write_text('{"instruction": "a", "input": "", "output": "b"}\n{"instruction": null, "output": "b"}\n')
    with pytest.raises(InputFileError, match="mosaic-it validate") as caught:
        split(path, tmp_path / "s")
    assert caught.value.line == 2


def test_split_cli_uses_params_and_overrides(valid_file, tmp_path, repo_root):
    params = tmp_path / "params.yaml"
    params.write_text(f"split:\n  input: {valid_file}\n  output_dir: {tmp_path / 'from_params'}\n  heldout_fraction: 0.25\n  seed: 1\n")
    exe = Path(sys.executable).parent / "mosaic-it"
    done = subprocess.run([str(exe), "split", "--params", str(params), "-S", "split.seed=2"],
                          cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "150 for training" in done.stdout and "50 held out" in done.stdout
    info = json.loads((tmp_path / "from_params" / "split.json").read_text())
    assert info["seed"] == 2 and info["heldout"] == 50

    done = subprocess.run([str(exe), "split", str(tmp_path / "absent.jsonl"), "--params", str(params)],
                          cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'absent.jsonl'}: no such file"

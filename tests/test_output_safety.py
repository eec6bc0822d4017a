"""Outputs never destroy inputs, never follow a symlink out of the output folder, never leave evaluate's
folder, and one process at a time writes an output folder (a dead holder's lock is free again)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mosaic_it.config.data import ValidateConfig
from mosaic_it.config.evaluate import EvaluateConfig
from mosaic_it.data.validate import run_validation
from mosaic_it.errors import ConfigError, MosaicItError
from mosaic_it.evaluate.run import run_evaluation
from mosaic_it.jsonl import write_jsonl
from mosaic_it.locks import LockHeld, output_lock
from mosaic_it.paths import refuse_overwriting_inputs

CLI = [sys.executable, "-c", "from mosaic_it.cli import main; main()"]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "data" / "records.jsonl"
    write_jsonl(path, [{"instruction": "Say hi.", "input": "", "output": "Hi."},
                       {"instruction": "Say bye.", "input": "", "output": "Bye."}])
    return path


def test_every_way_of_naming_the_input_as_output_is_refused(tmp_path, source):
    (tmp_path / "link.jsonl").symlink_to(source)
    os.link(source, tmp_path / "hard.jsonl")
    for alias in (source, tmp_path / "data" / ".." / "data" / "records.jsonl", tmp_path / "link.jsonl",
                  tmp_path / "hard.jsonl"):
        with pytest.raises(MosaicItError, match=f"^augment: output {alias} is the input {source};"):
            refuse_overwriting_inputs("augment", [source], [alias])
    with pytest.raises(MosaicItError, match=f"^train: input {source} lies in the output folder {tmp_path / 'data'}"):
        refuse_overwriting_inputs("train", [source], [], [tmp_path / "data"])
    refuse_overwriting_inputs("augment", [source, None], [tmp_path / "data" / "mosaic.jsonl"], [tmp_path / "out"])


def test_a_data_docs_symlink_out_of_the_output_folder_is_refused_and_its_target_survives(tmp_path, source):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    out = tmp_path / "validate"
    out.mkdir()
    (out / "data_docs").symlink_to(precious, target_is_directory=True)
    with pytest.raises(MosaicItError) as raised:
        run_validation(ValidateConfig(input=str(source), output_dir=str(out)))
    assert str(raised.value) == (f"{out / 'data_docs'}: is a symlink leading outside the output folder {out}; "
                                 "refusing to write through it (remove the link)")
    assert [p.name for p in precious.iterdir()] == ["notes.txt"] and (precious / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["data_docs"]  # nothing written


def test_fresh_data_docs_replace_the_old_ones_whole(tmp_path, source):
    out = tmp_path / "validate"
    (out / "data_docs").mkdir(parents=True)
    (out / "data_docs" / "stale.html").write_text("an earlier run")
    report = run_validation(ValidateConfig(input=str(source), output_dir=str(out)))
    assert report.valid == 2
    docs = out / "data_docs"
    assert (docs / "index.html").is_file() and not (docs / "stale.html").exists()
    assert sorted(p.name for p in out.iterdir()) == ["data_docs", "rejected.jsonl", "report.json", "valid.jsonl",
                                                     "valid_positions.json"]
    assert ".tmp-" not in (docs / "index.html").read_text()  # links point at the published folder


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["../escaped", "/tmp/absolute"])
def test_evaluate_refuses_an_arm_that_is_a_path(tmp_path, repo_root, arm):
    proc = subprocess.run([*CLI, "evaluate", "--arm", arm, "--params", str(repo_root / "params.yaml"),
                           "-S", f"evaluate.output_dir={tmp_path / 'evaluate'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: arm: Value error, {arm!r} is not a plain name (letters, digits, "
                                        "'_', '-', '.'; not a path, not starting with '.')"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arm", [".", "..", "a/b", "", ".hidden"])
def test_arm_names_are_plain_names(arm):
    from pydantic import ValidationError

    from mosaic_it.config.evaluate import CompareConfig
    from mosaic_it.config.train import TrainConfig

    for make in (lambda: EvaluateConfig(arm=arm), lambda: TrainConfig(arm=arm), lambda: CompareConfig(baseline=arm)):
        with pytest.raises(ValidationError, match="is not a plain name"):
            make()


def test_evaluate_refuses_an_arm_folder_that_is_a_symlink_out_of_output_dir(tmp_path):
    root = tmp_path / "evaluate"
    root.mkdir()
    (root / "baseline").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ConfigError, match=r"evaluate.arm='baseline': results must stay inside evaluate.output_dir"):
        run_evaluation(EvaluateConfig(arm="baseline", output_dir=str(root)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluate"]


HOLDER = """
import sys, time
from mosaic_it.locks import output_lock
with output_lock(sys.argv[1], "training"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_held_output_folder_is_refused_and_a_killed_holder_frees_it(tmp_path, repo_root):
    folder = tmp_path / "train" / "baseline"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=repo_root, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld) as raised:
            with output_lock(folder, "training"):
                pass
        assert str(raised.value) == (f"{folder}: another training is writing this folder (pid {holder.pid}); "
                                     "wait for it to finish or choose another arm")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    started = time.monotonic()
    with output_lock(folder, "training"):  # the kernel released the dead holder's lock
        assert time.monotonic() - started < 5
    assert not folder.exists()  # the lock lives beside the folder, never inside what DVC tracks

"""Trainings side by side and after a kill: one writer per arm, a fresh MLflow store shared safely, and a
run killed with -9 continued on resume so that one training is one MLflow run with one loss curve."""
from __future__ import annotations

import signal
import subprocess
import sys

import mlflow
import pytest

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.jsonl import write_jsonl
from mosaic_it.locks import LockHeld
from mosaic_it.train.data import load_records
from mosaic_it.train.run import run_training

# Runs one training from a JSON config; `pause` waits at step 1 until a file appears, `kill` dies at step N.
TRAINER = """
import json, os, signal, sys, time
from pathlib import Path
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.train.run import run_training

cfg, tracking, mode, arg = TrainConfig.model_validate_json(sys.argv[1]), TrackingConfig.model_validate_json(sys.argv[2]), sys.argv[3], sys.argv[4]

def hook(log):
    print("step", log.step, flush=True)
    if mode == "pause" and log.step == 1:
        while not Path(arg).exists():
            time.sleep(0.05)
    if mode == "kill" and log.step == int(arg):
        os.kill(os.getpid(), signal.SIGKILL)

result = run_training(cfg, tracking, callbacks=[hook])
print("run", result.run_id, flush=True)
"""


@pytest.fixture
def data8(tmp_path, sample_data):
    path = tmp_path / "train.jsonl"
    write_jsonl(path, load_records(sample_data, max_records=8))
    return path


def tiny(model_dir, data, out, **changes) -> TrainConfig:
    settings = dict(model=str(model_dir), data=str(data), output_dir=str(out), max_length=64, batch_size=4,
                    max_steps=2, warmup_ratio=0.0, sample_max_new_tokens=0)
    return TrainConfig(**{**settings, **changes})


def tracking_in(tmp_path, enabled: bool = True) -> TrackingConfig:
    return TrackingConfig(enabled=enabled, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment_name="t",
                          artifact_location=str(tmp_path / "artifacts"), log_model=False, register_as=None)


def start(cfg: TrainConfig, tracking: TrackingConfig, mode: str, arg: str, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRAINER, cfg.model_dump_json(), tracking.model_dump_json(), mode, arg],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_second_training_on_the_same_arm_gets_the_lock_error(tmp_path, tiny_llama_dir, data8, repo_root):
    cfg = tiny(tiny_llama_dir, data8, tmp_path / "train")
    go = tmp_path / "go"
    first = start(cfg, tracking_in(tmp_path, enabled=False), "pause", str(go), repo_root)
    try:
        assert first.stdout.readline().strip() == "step 1", first.stderr.read()[-2000:]
        with pytest.raises(LockHeld) as raised:
            run_training(cfg, tracking_in(tmp_path, enabled=False))
        assert str(raised.value) == (f"{tmp_path / 'train' / 'baseline'}: another training is writing this folder "
                                     f"(pid {first.pid}); wait for it to finish or choose another arm")
    finally:
        go.touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert (tmp_path / "train" / "baseline" / "metrics.json").exists()


@pytest.mark.slow
def test_two_trainings_on_a_fresh_mlflow_store_both_succeed(tmp_path, tiny_llama_dir, data8, repo_root):
    tracking = tracking_in(tmp_path)
    procs = [start(tiny(tiny_llama_dir, data8, tmp_path / "train", arm=arm), tracking, "run", "-", repo_root)
             for arm in ("baseline", "mosaic")]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, results):
        assert proc.returncode == 0, err[-3000:]
    mlflow.set_tracking_uri(tracking.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["t"], output_format="list")
    assert sorted((r.info.run_name, r.info.status) for r in runs) == [("train:baseline", "FINISHED"),
                                                                      ("train:mosaic", "FINISHED")]


@pytest.mark.slow
def test_a_killed_training_resumes_into_the_same_mlflow_run_with_one_loss_curve(tmp_path, tiny_llama_dir, data8,
                                                                                repo_root):
    tracking = tracking_in(tmp_path)
    cfg = tiny(tiny_llama_dir, data8, tmp_path / "train", max_steps=6, save_every=2, learning_rate=5e-3)
    killed = start(cfg, tracking, "kill", "5", repo_root)
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, err[-2000:]
    mlflow.set_tracking_uri(tracking.tracking_uri)
    (left,) = mlflow.search_runs(experiment_names=["t"], output_format="list")
    assert left.info.status == "RUNNING"  # what kill -9 leaves behind

    result = run_training(cfg, tracking)
    (run,) = mlflow.search_runs(experiment_names=["t"], output_format="list")
    assert run.info.run_id == left.info.run_id == result.run_id and run.info.status == "FINISHED"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train/loss")
    curve: dict[int, list[float]] = {}
    for point in history:
        curve.setdefault(point.step, []).append(point.value)
    # Steps 1-4 were logged by the killed process, 5-6 after resuming from the step-4 checkpoint; a step
    # logged by both (killed just after logging it) has the same loss twice, since the resume is exact.
    assert sorted(curve) == [1, 2, 3, 4, 5, 6]
    assert [v[0] for _, v in sorted(curve.items())] == pytest.approx(result.losses, abs=1e-6)
    assert all(max(v) - min(v) < 1e-6 for v in curve.values())
    assert not (tmp_path / "train" / "baseline" / "checkpoints").exists()

"""Lineage on a real MLflow SQLite store and a real git checkout: the commit and DVC experiment a
run came from, KILLED (not FAILED) when interrupted, and what a model hashes to."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import mlflow
import pytest

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.hashing import hash_paths
from mosaic_it.lineage import EMBEDDED_MODEL_ID, base_model, read_lineage, write_lineage
from mosaic_it.models.embedded import GGUF_FILE, gguf_package_dir
from mosaic_it.tracking import stage_run
from servers import GIT_IDENTITY, venv_env


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    return TrackingConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment_name="lineage",
                          artifact_location=str(root / "artifacts"))


@pytest.fixture
def tracking(store) -> TrackingConfig:
    yield store
    while mlflow.active_run() is not None:
        mlflow.end_run()


def git(repo, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env=venv_env(**GIT_IDENTITY), check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def test_a_run_records_its_git_commit_and_dvc_experiment(tracking, tmp_path, monkeypatch):
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "params.yaml").write_text("a: 1\n", encoding="utf-8")
    git(tmp_path, "add", "params.yaml")
    git(tmp_path, "commit", "-q", "-m", "one")
    head = git(tmp_path, "rev-parse", "HEAD")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_EXP_NAME", "wise-yawl")
    monkeypatch.setenv("DVC_STAGE", "train@mosaic")
    monkeypatch.delenv("DVC_EXP_BASELINE_REV", raising=False)

    with stage_run("train:mosaic", tracking) as run:
        pass
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["mosaic_it.git_commit"] == tags["mlflow.source.git.commit"] == head
    assert (tags["dvc.exp_name"], tags["dvc.stage"]) == ("wise-yawl", "train@mosaic")
    assert "dvc.exp_baseline_rev" not in tags

    (tmp_path / "params.yaml").write_text("a: 2\n", encoding="utf-8")  # a run from edited code says so
    with stage_run("train:mosaic", tracking) as run:
        pass
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["mosaic_it.git_commit"] == f"{head}-dirty" and tags["mlflow.source.git.commit"] == head


def test_an_interrupted_run_and_its_parent_end_killed(tracking):
    with pytest.raises(KeyboardInterrupt):
        with stage_run("mosaic-it-pipeline", tracking) as parent:
            with stage_run("augment", tracking) as child:
                raise KeyboardInterrupt
    assert mlflow.get_run(parent.info.run_id).info.status == "KILLED"
    assert mlflow.get_run(child.info.run_id).info.status == "KILLED"


SLEEPER = """
import sys, time
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.tracking import stage_run
with stage_run("train:mosaic", TrackingConfig(tracking_uri=sys.argv[1], experiment_name="lineage")) as run:
    print(run.info.run_id, flush=True)
    time.sleep(120)
"""


def test_sigterm_ends_a_cli_run_killed(tracking, repo_root):
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, tracking.tracking_uri], cwd=repo_root,
                            stdout=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert mlflow.MlflowClient(tracking.tracking_uri).get_run(run_id).info.status == "KILLED"


def test_base_models_are_named_and_hashed_by_content(tmp_path):
    embedded = base_model(None)
    assert embedded == {"id": EMBEDDED_MODEL_ID, "sha256": hash_paths([gguf_package_dir() / GGUF_FILE])}
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"weights")
    shutil.copytree(folder, tmp_path / "copy")
    assert base_model(str(folder))["sha256"] == base_model(str(tmp_path / "copy"))["sha256"]  # content, not place
    (tmp_path / "copy" / "model.safetensors").write_bytes(b"other weights")
    assert base_model(str(folder))["sha256"] != base_model(str(tmp_path / "copy"))["sha256"]
    assert base_model("org/some-hub-model") == {"id": "org/some-hub-model", "sha256": None}


def test_lineage_round_trips_and_an_unreadable_one_is_empty(tmp_path):
    record = {"run_id": "abc", "data_md5": "0" * 32, "base_model": EMBEDDED_MODEL_ID, "base_model_sha256": "f" * 64}
    write_lineage(tmp_path, record)
    assert read_lineage(tmp_path) == record
    (tmp_path / "lineage.json").write_text("[1, 2", encoding="utf-8")
    assert read_lineage(tmp_path) == {} and read_lineage(tmp_path / "missing") == {} and read_lineage(None) == {}

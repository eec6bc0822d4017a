"""MLflow stage runs against a real SQLite store: nesting, params hygiene, FAILED runs, dataset hashes."""
from __future__ import annotations

import subprocess
import sys

import mlflow
import pytest

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.jsonl import write_jsonl
from mosaic_it.tracking import PARENT_RUN_ENV, file_md5, flatten, is_secret, log_jsonl_dataset, stage_run


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")  # one store per module: creating its schema takes seconds
    return TrackingConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment_name="tests",
                          artifact_location=str(root / "artifacts"))


@pytest.fixture
def tracking(store) -> TrackingConfig:
    yield store
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_secrets_are_dropped_by_word_not_by_substring():
    assert is_secret("hf_token") and is_secret("api_key") and is_secret("password") and is_secret("aws-secret")
    assert not is_secret("max_tokens") and not is_secret("tokenizer") and not is_secret("keep_checkpoints")


def test_flatten_nests_keys_cuts_long_values_and_hides_credentials():
    flat = flatten({"train": {"lora": {"r": 8}, "hf_token": "abc", "prompts": ["x" * 900]},
                    "tracking": {"tracking_uri": "https://alice:pw@host:5000/"}})
    assert flat["train.lora.r"] == "8"
    assert "train.hf_token" not in flat
    assert len(flat["train.prompts"]) == 500 and flat["train.prompts"].endswith("...")
    assert flat["tracking.tracking_uri"] == "https://***@host:5000/"


def test_stage_runs_nest_under_the_active_pipeline_run(tracking):
    mlflow.set_tracking_uri(tracking.tracking_uri)
    experiment = mlflow.set_experiment("pipeline")
    with mlflow.start_run(run_name="pipeline") as parent:
        with stage_run("train:baseline", tracking, params={"train": {"lr": 0.1}}) as run:
            mlflow.log_metric("x", 1.0)
    child = mlflow.get_run(run.info.run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.info.experiment_id == experiment.experiment_id
    assert child.data.params == {"train.lr": "0.1"} and child.info.status == "FINISHED"


def test_a_parent_run_id_in_the_environment_is_honoured(tracking, monkeypatch):
    mlflow.set_tracking_uri(tracking.tracking_uri)
    with mlflow.start_run(experiment_id=mlflow.set_experiment("flows").experiment_id) as parent:
        pass
    monkeypatch.setenv(PARENT_RUN_ENV, parent.info.run_id)
    with stage_run("evaluate", tracking) as run:
        pass
    assert mlflow.get_run(run.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_an_exception_marks_the_run_failed_and_propagates(tracking):
    with pytest.raises(RuntimeError, match="boom"):
        with stage_run("train", tracking) as run:
            raise RuntimeError("boom")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None
    with stage_run("train", tracking) as second:  # without an active parent: a top-level run
        pass
    assert "mlflow.parentRunId" not in mlflow.get_run(second.info.run_id).data.tags


def test_disabled_tracking_yields_no_run(tmp_path):
    with stage_run("train", TrackingConfig(enabled=False, tracking_uri=f"sqlite:///{tmp_path}/x.db")) as run:
        assert run is None
    assert not (tmp_path / "x.db").exists()


def test_dataset_input_carries_the_md5_dvc_records(tracking, tmp_path):
    data = tmp_path / "repo" / "train.jsonl"
    write_jsonl(data, [{"instruction": "a", "input": "", "output": "b"}, {"instruction": "ü", "input": "x", "output": "y"}])
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=data.parent, check=True)
    subprocess.run([*dvc, "add", "-q", "train.jsonl"], cwd=data.parent, check=True)
    dvc_md5 = next(line.split(":")[1].strip() for line in (data.parent / "train.jsonl.dvc").read_text().splitlines()
                   if line.strip().startswith("- md5:"))
    assert file_md5(data) == dvc_md5
    with stage_run("train", tracking) as run:
        assert log_jsonl_dataset(data, name="baseline-train") == dvc_md5
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("baseline-train", dvc_md5)]


def test_the_default_relative_store_follows_the_current_directory(tmp_path, monkeypatch):
    """MLflow keeps one database engine per URI string: `sqlite:///mlflow.db` used in one directory
    must not keep writing there once the process works in another (a flow run in-process after a
    chdir once logged to, and read back from, another repository's store)."""
    from mlflow import MlflowClient

    relative = TrackingConfig(tracking_uri="sqlite:///mlflow.db", experiment_name="here")
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        with stage_run(f"validate:{name}", relative):
            pass
    for name in ("first", "second"):
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / name / 'mlflow.db'}")
        runs = client.search_runs([client.get_experiment_by_name("here").experiment_id])
        assert [r.info.run_name for r in runs] == [f"validate:{name}"]

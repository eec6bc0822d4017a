"""Stage runs logged to a real `mlflow server` on loopback, read back through its REST API."""
from __future__ import annotations

import pytest

from mosaic_it import tracking as track
from mosaic_it.config.tracking import TrackingConfig


@pytest.fixture
def restore_tracking_uri():
    import mlflow

    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)


@pytest.mark.slow
def test_parent_and_nested_stage_runs_on_a_tracking_server(tmp_path, restore_tracking_uri, mlflow_server_url):
    import mlflow
    from mlflow import MlflowClient

    from tasks.common import mlflow_link

    url = mlflow_server_url
    cfg = TrackingConfig(tracking_uri=url, experiment_name="orchestration-test")
    report = tmp_path / "report.json"
    report.write_text('{"valid": 38}', encoding="utf-8")
    with track.stage_run("mosaic-it-pipeline", cfg, params={"flow": {"params_path": "params.yaml"}}) as parent:
        with track.stage_run("validate", cfg, params={"validate": {"max_tokens": 512, "api_key": "x"}}) as child:
            track.log_metrics({"valid": 38, "rejected": 2})
            track.log_artifacts(report)
            link = mlflow_link()
        with pytest.raises(RuntimeError):
            with track.stage_run("train:mosaic", cfg):
                raise RuntimeError("interrupted")
    assert mlflow.active_run() is None

    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name("orchestration-test")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"mosaic-it-pipeline", "validate", "train:mosaic"}
    assert runs["mosaic-it-pipeline"].info.run_id == parent.info.run_id
    assert runs["mosaic-it-pipeline"].info.status == "FINISHED"
    assert runs["mosaic-it-pipeline"].data.params == {"flow.params_path": "params.yaml"}

    stage = runs["validate"]
    assert stage.info.run_id == child.info.run_id
    assert stage.info.status == "FINISHED"
    assert stage.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert stage.data.tags["mosaic_it.stage"] == "validate"
    assert stage.data.params == {"validate.max_tokens": "512"}  # the secret never leaves the process
    assert stage.data.metrics == {"valid": 38.0, "rejected": 2.0}
    assert [a.path for a in client.list_artifacts(stage.info.run_id)] == ["report.json"]
    assert f"{url}/#/experiments/{experiment.experiment_id}/runs/{stage.info.run_id}" in link

    failed = runs["train:mosaic"]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["mlflow.parentRunId"] == parent.info.run_id

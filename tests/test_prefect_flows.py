"""The flows in-process against a temporary Prefect server: the compare flow with training under
`accelerate launch` (two CPU processes), result caching of the data tasks, and flow parameters."""
from __future__ import annotations

import json

import pytest
from prefect import flow

from flows.common import override_list, resolve_params
from servers import scratch_repo, tiny_params

# The temporary Prefect server's SQLAlchemy models warn on every query; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_overrides_accept_a_mapping_or_cli_style_strings(repo_root):
    assert override_list({"augment.epochs": 2, "augment.wrap_mode": "exp", "train.model": None}) == [
        "augment.epochs=2", 'augment.wrap_mode="exp"', "train.model=null"]
    assert override_list(["augment.epochs=2"]) == ["augment.epochs=2"]
    assert override_list(None) == []
    params = resolve_params(str(repo_root / "params.yaml"), {"augment.epochs": 3, "evaluate.evals": ["heldout"]})
    assert params.augment.epochs == 3 and params.evaluate.evals == ["heldout"]
    assert resolve_params(str(repo_root / "params.yaml"), ["augment.wrap_mode=exp"]).augment.wrap_mode == "exp"


@pytest.fixture
def repo(tmp_path, tiny_llama_dir, monkeypatch):
    params = tiny_params(tiny_llama_dir)
    params["evaluate"]["evals"] = ["heldout"]
    path = scratch_repo(tmp_path / "repo", params)
    monkeypatch.chdir(path)
    return path


@pytest.mark.slow
def test_compare_flow_trains_both_arms_under_accelerate(prefect_api, repo):
    from mlflow import MlflowClient

    from flows.compare import compare_flow

    result = compare_flow(launcher="accelerate", num_processes=2)

    report = repo / result["report"]
    assert "baseline" in report.read_text(encoding="utf-8") and "mosaic" in report.read_text(encoding="utf-8")
    for arm in ("baseline", "mosaic"):
        assert json.loads((repo / "runs" / "train" / arm / "metrics.json").read_text())["train/steps"] == 2.0
        assert (repo / "runs" / "evaluate" / arm / "metrics.json").exists()

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parent = next(r for r in runs if r.info.run_id == result["mlflow_run_id"])
    assert parent.info.run_name == "mosaic-it-compare" and parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(
        ["validate", "split", "augment", "train:baseline", "train:mosaic", "evaluate:baseline", "evaluate:mosaic",
         "compare"])
    trained = {r.info.run_name: r for r in children if r.info.run_name.startswith("train:")}
    assert {r.data.params["derived.world_size"] for r in trained.values()} == {"2"}
    assert trained["train:mosaic"].data.tags["dataset.mosaic-train.md5"] != trained["train:baseline"].data.tags[
        "dataset.baseline-train.md5"]
    compared = next(r for r in children if r.info.run_name == "compare")
    for arm in ("baseline", "mosaic"):
        assert compared.data.params[f"consumed.{arm}.train_run_id"] == trained[f"train:{arm}"].info.run_id
        assert compared.data.params[f"consumed.{arm}.train_data_md5"] == trained[f"train:{arm}"].data.params[
            "derived.data_md5"]
        assert parent.data.metrics[f"{arm}/heldout/loss"] == next(
            r for r in children if r.info.run_name == f"evaluate:{arm}").data.metrics["heldout/loss"]


@pytest.mark.slow
def test_data_tasks_are_cached_on_input_content_and_rerun_when_it_changes(prefect_api, repo):
    from tasks.data import split, validate

    @flow
    def data_stages():
        params = resolve_params("params.yaml", {"tracking.enabled": False})
        return [validate(params.validation, params.tracking, return_state=True),
                split(params.split, params.tracking, return_state=True)]

    assert [s.name for s in data_stages()] == ["Completed", "Completed"]
    assert [s.name for s in data_stages()] == ["Cached", "Cached"]

    (repo / "runs" / "split" / "heldout.jsonl").unlink()  # an output gone: split must run again
    assert [s.name for s in data_stages()] == ["Cached", "Completed"]

    records = json.loads((repo / "data" / "tiny.json").read_text(encoding="utf-8"))
    (repo / "data" / "tiny.json").write_text(json.dumps(records[:-1]), encoding="utf-8")
    assert [s.name for s in data_stages()] == ["Completed", "Completed"]


@pytest.mark.slow
def test_a_user_error_fails_at_once_with_its_report_published(prefect_api, repo):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, ArtifactFilterTaskRunId

    from tasks.data import validate

    records = json.loads((repo / "data" / "tiny.json").read_text(encoding="utf-8"))
    records.append({"instruction": "Say nothing.", "input": "", "output": ""})
    (repo / "data" / "tiny.json").write_text(json.dumps(records), encoding="utf-8")

    @flow
    def strict_validation():
        params = resolve_params("params.yaml", {"validate.max_rejected_fraction": 0.0, "tracking.enabled": False})
        return validate(params.validation, params.tracking, return_state=True)

    state = strict_validation(return_state=True).result(raise_on_failure=False)
    assert state.is_failed() and "max_rejected_fraction" in state.message
    with get_client(sync_client=True) as client:
        task_run = client.read_task_run(state.state_details.task_run_id)
        assert task_run.run_count == 1  # a MosaicItError is not retried
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["validation-report"]), task_run_id=ArtifactFilterTaskRunId(any_=[task_run.id])))
    assert len(artifacts) == 1 and "1 rejected" in artifacts[0].data


@pytest.mark.slow
def test_a_cached_stage_whose_output_was_overwritten_runs_again_and_training_sees_its_samples(
        prefect_api, repo, tiny_llama_dir):
    """The sequence of issue 14: a run with augment.wrap_mode=exp overwrites the samples; back on
    uniform, augment's cached result no longer matches the file, so augment reruns and training
    reads (and logs the hash of) the uniform samples again."""
    from mlflow import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from mosaic_it.hashing import hash_paths
    from mosaic_it.tracking import file_md5
    from tasks.data import split, validate
    from tasks.mosaic import augment
    from tasks.train import train

    @flow
    def augment_then_train(wrap_mode: str, with_training: bool = True):
        params = resolve_params("params.yaml", {"augment.wrap_mode": wrap_mode})
        validate(params.validation, params.tracking)
        split(params.split, params.tracking)
        state = augment(params.augment, params.tracking, return_state=True)
        trained = train(params.train, params.tracking, params.cost) if with_training else None
        return state.name, trained.run_id if trained else None

    samples = repo / "runs" / "augment" / "mosaic.jsonl"
    assert augment_then_train("uniform")[0] == "Completed"
    uniform = file_md5(samples)
    assert augment_then_train("exp")[0] == "Completed"
    assert file_md5(samples) != uniform

    flow_state = augment_then_train("uniform", return_state=True)
    state, run_id = flow_state.result()
    assert state == "Completed" and file_md5(samples) == uniform
    trained = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}").get_run(run_id)
    assert trained.data.tags["mosaic_it.data_md5"] == trained.data.params["derived.data_md5"] == uniform
    assert trained.data.params["derived.base_model"] == str(tiny_llama_dir)
    assert trained.data.params["derived.base_model_sha256"] == hash_paths([tiny_llama_dir])
    lineage = json.loads((repo / "runs" / "train" / "mosaic" / "lineage.json").read_text(encoding="utf-8"))
    assert lineage["run_id"] == run_id and lineage["data_md5"] == uniform

    # Nothing changed since: reused, and its report published again, marked cached.
    reused = augment_then_train("uniform", with_training=False, return_state=True)
    assert reused.result()[0] == "Cached"
    with get_client(sync_client=True) as client:
        reports = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["mosaic-stats"])))
    per_flow = [[r.data for r in reports if r.flow_run_id == flow.state_details.flow_run_id]
                for flow in (flow_state, reused)]
    assert [len(found) for found in per_flow] == [1, 1]
    assert ["(cached)" in found[0] for found in per_flow] == [False, True]

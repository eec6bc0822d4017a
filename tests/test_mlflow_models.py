"""Trained arms as MLflow models on a real loopback `mlflow server`: logged and registered by
training, linked to their run, data and metrics, aliased by compare, loaded back by `models:/` URI
(by evaluate and as a pyfunc), with system metrics beside the runs."""
from __future__ import annotations

import json

import pytest

from mosaic_it.config.evaluate import CompareConfig, EvaluateConfig, GenerationConfig, PromoteConfig
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.jsonl import write_jsonl
from mosaic_it.tracking import file_md5
from mosaic_it.train.data import load_records


@pytest.fixture
def restore_mlflow():
    import mlflow
    from mlflow.system_metrics import set_system_metrics_sampling_interval

    before = mlflow.get_tracking_uri()
    set_system_metrics_sampling_interval(0.2)  # runs here last seconds, not minutes
    yield
    set_system_metrics_sampling_interval(None)
    mlflow.set_tracking_uri(before)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_arms_are_registered_models_that_compare_aliases_and_evaluate_loads(
        tmp_path, tiny_llama_dir, sample_data, restore_mlflow, mlflow_server_url):
    import mlflow
    import pandas as pd
    import torch
    from mlflow import MlflowClient

    from mosaic_it.evaluate.compare import run_compare
    from mosaic_it.evaluate.generate import generate
    from mosaic_it.evaluate.model import load_model
    from mosaic_it.evaluate.run import run_evaluation
    from mosaic_it.mlmodel.load import version_model_id
    from mosaic_it.mlmodel.promote import winner
    from mosaic_it.train.run import run_training

    records = load_records(sample_data, max_records=12)
    data, heldout = tmp_path / "train.jsonl", tmp_path / "heldout.jsonl"
    write_jsonl(data, records[:8])
    write_jsonl(heldout, records[8:])
    url = mlflow_server_url
    tracking = TrackingConfig(tracking_uri=url, experiment_name="models", system_metrics=True)
    trained = {}
    for arm, steps in (("baseline", 1), ("mosaic", 3)):
        cfg = TrainConfig(model=str(tiny_llama_dir), data=str(data), output_dir=str(tmp_path / "train"), arm=arm,
                          max_steps=steps, max_length=64, batch_size=2, save_every=0, sample_max_new_tokens=0)
        trained[arm] = run_training(cfg, tracking)
    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name("models")

    # Each train run logged one model, registered as version 1 of mosaic-it-<arm>.
    for arm, result in trained.items():
        (logged,) = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list",
                                                filter_string=f"source_run_id = '{result.run_id}'")
        assert logged.name == arm and logged.tags["mosaic_it.arm"] == arm
        assert logged.tags["mosaic_it.data_md5"] == file_md5(data)
        assert logged.tags["mosaic_it.base_model"] == str(tiny_llama_dir)
        assert [str(v.version) for v in client.search_model_versions(f"name = 'mosaic-it-{arm}'")] == ["1"]
        version = client.get_model_version(f"mosaic-it-{arm}", "1")
        assert (str(version.version), version.run_id) == ("1", result.run_id)
        assert version_model_id(version) == logged.model_id
        linked = {m.key: m.value for m in client.get_logged_model(logged.model_id).metrics}
        assert linked["cost/usd"] == pytest.approx(result.metrics["cost/usd"])
        run = client.get_run(result.run_id)
        assert "system/cpu_utilization_percentage" in run.data.metrics
        assert "model" not in {a.path for a in client.list_artifacts(result.run_id)}  # no second copy

    # Evaluate one arm by registry URI and the other by its folder: both link metrics to the model.
    base_eval = EvaluateConfig(model=str(trained["baseline"].output_dir), arm="baseline", heldout=str(heldout),
                               output_dir=str(tmp_path / "evaluate"), evals=["heldout"], heldout_limit=4,
                               heldout_max_tokens=64, device="cpu",
                               generation=GenerationConfig(batch_size=2, max_new_tokens=2))
    evaluated = {"baseline": run_evaluation(base_eval, tracking),
                 "mosaic": run_evaluation(base_eval.model_copy(update={"model": "models:/mosaic-it-mosaic/1",
                                                                       "arm": "mosaic"}), tracking)}
    for arm, result in evaluated.items():
        version = client.get_model_version(f"mosaic-it-{arm}", "1")
        linked = {m.key: m.value for m in client.get_logged_model(version_model_id(version)).metrics}
        assert linked["heldout/loss"] == pytest.approx(result.metrics["heldout/loss"])
    local_mosaic = json.loads((tmp_path / "evaluate" / "mosaic" / "metrics.json").read_text())
    folder_mosaic = run_evaluation(base_eval.model_copy(update={"model": str(trained["mosaic"].output_dir),
                                                                 "arm": "mosaic-folder"}))
    assert local_mosaic["heldout/loss"] == pytest.approx(folder_mosaic.metrics["heldout/loss"], abs=1e-6)

    # Compare puts the alias on the arm with the lower held-out loss.
    compare = CompareConfig(evaluate_dir=str(tmp_path / "evaluate"), train_dir=str(tmp_path / "train"),
                            output_dir=str(tmp_path / "compare"), promote=PromoteConfig(alias="candidate"))
    run_compare(compare, tracking)
    best = winner(compare, evaluated["baseline"].metrics, evaluated["mosaic"].metrics)
    other = "mosaic" if best == "baseline" else "baseline"
    assert str(client.get_model_version_by_alias(f"mosaic-it-{best}", "candidate").version) == "1"
    assert client.get_registered_model(f"mosaic-it-{other}").aliases == {}

    # `models:/...@candidate` loads the very weights training wrote.
    mlflow.set_tracking_uri(url)
    by_alias, tokenizer = load_model(f"models:/mosaic-it-{best}@candidate", "cpu")
    by_folder, _ = load_model(str(trained[best].output_dir), "cpu")
    assert _state(by_alias).keys() == _state(by_folder).keys()
    assert all(torch.equal(a, b) for a, b in zip(_state(by_alias).values(), _state(by_folder).values()))

    # The registered model also serves as an MLflow pyfunc, offline.
    served = mlflow.pyfunc.load_model(f"models:/mosaic-it-{best}@candidate")
    answers = served.predict(pd.DataFrame({"prompt": ["Name a colour.", "Say hi."]}), params={"max_new_tokens": 3})
    expected = generate(by_folder, tokenizer, ["Name a colour.", "Say hi."], GenerationConfig(max_new_tokens=3))
    assert list(answers) == expected


def test_register_as_names_each_arm_or_nothing():
    from mosaic_it.mlmodel.log import registered_name

    assert registered_name(TrackingConfig(), "mosaic") == "mosaic-it-mosaic"
    assert registered_name(TrackingConfig(register_as="team-{arm}-lora"), "baseline") == "team-baseline-lora"
    assert registered_name(TrackingConfig(register_as=None), "mosaic") is None


def test_the_winner_is_the_better_arm_on_the_chosen_metric():
    from mosaic_it.mlmodel.promote import winner

    lower = CompareConfig(promote=PromoteConfig(alias="candidate", metric="heldout/loss"))
    assert winner(lower, {"heldout/loss": 2.0}, {"heldout/loss": 1.5}) == "mosaic"
    assert winner(lower, {"heldout/loss": 1.5}, {"heldout/loss": 1.5}) == "baseline"  # a tie keeps the baseline
    higher = CompareConfig(promote=PromoteConfig(metric="ifeval/prompt_strict", higher_is_better=True))
    assert winner(higher, {"ifeval/prompt_strict": 0.2}, {"ifeval/prompt_strict": 0.3}) == "mosaic"
    assert winner(higher, {"ifeval/prompt_strict": 0.2}, {}) is None


def test_a_uri_that_is_not_a_mosaic_it_model_is_a_one_line_error(tmp_path):
    from mosaic_it.errors import MosaicItError
    from mosaic_it.mlmodel.load import is_model_uri, weights_folder

    assert is_model_uri("models:/mosaic-it-mosaic@candidate") and is_model_uri("runs:/abc/mosaic")
    assert not is_model_uri("runs/train/mosaic") and not is_model_uri(None)
    (tmp_path / "MLmodel").write_text("flavors:\n  sklearn: {}\n", encoding="utf-8")
    with pytest.raises(MosaicItError, match=r"^models:/x/1 is not a mosaic-it model"):
        weights_folder(tmp_path, "models:/x/1")
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    artifacts:\n      model:\n        path: ../../etc\n", encoding="utf-8")
    with pytest.raises(MosaicItError, match="points outside the downloaded model"):
        weights_folder(tmp_path, "models:/x/1")

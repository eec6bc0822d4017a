"""`mosaic-it train` end to end: the real embedded model, a real MLflow store, the files DVC tracks."""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import mlflow
import pytest

from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.config.train import TrainConfig
from mosaic_it.jsonl import write_jsonl
from mosaic_it.mlmodel.load import version_model_id
from mosaic_it.tracking import file_md5
from mosaic_it.train.data import load_records
from mosaic_it.train.run import run_training

CLI = [sys.executable, "-c", "from mosaic_it.cli import main; main()"]


@pytest.mark.slow
def test_train_cli_with_the_embedded_model_logs_everything(tmp_path, repo_root, sample_data):
    data = tmp_path / "mosaic.jsonl"
    write_jsonl(data, load_records(sample_data, max_records=8))
    overrides = ["train.max_steps=2", "train.batch_size=2", "train.max_length=128", "train.sample_max_new_tokens=4",
                 "train.save_every=0", "train.output_dir=runs/train", "tracking.experiment_name=cli"]
    proc = subprocess.run([*CLI, "train", "--params", str(repo_root / "params.yaml"), "--arm", "mosaic",
                           "--data", str(data), *[a for o in overrides for a in ("-S", o)]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("mosaic: 2 steps, final loss ")
    # Clean logs off a terminal: no third-party warning; progress and one summary line on stderr.
    assert "Warning" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert "train: 0/2 step (0%)" in lines
    assert any(line.startswith("train: 2/2 step (100%), ") and ", done in " in line for line in lines)
    (summary,) = [line for line in lines if line.startswith("train mosaic: wrote ")]
    assert summary.startswith(f"train mosaic: wrote {Path('runs/train/mosaic')} (model/, metrics.json, ")
    assert summary.endswith(" registered as mosaic-it-mosaic v1")

    out = tmp_path / "runs" / "train" / "mosaic"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("cost/wall_seconds", "cost/device_hours", "cost/usd", "tokens/real", "tokens/padded",
                "tokens/padding_fraction", "throughput/tokens_per_second", "cost/flops", "memory/peak_bytes"):
        assert metrics[key] > 0 or key == "tokens/padding_fraction", key
    assert "cost/mfu" not in metrics  # CPU: no known peak
    assert metrics["cost/usd"] == pytest.approx(metrics["cost/device_hours"] * 2.0)
    assert (out / "model" / "adapter_model.safetensors").exists() and (out / "model" / "tokenizer.json").exists()
    assert [s["prompt"] for s in json.loads((out / "samples.json").read_text())] == TrainConfig().sample_prompts
    assert (out / "cost.md").read_text().startswith("| run |")

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")  # the default URI, relative to the cwd
    (run,) = mlflow.search_runs(experiment_names=["cli"], output_format="list")
    assert run.info.status == "FINISHED" and run.info.run_name == "train:mosaic"
    assert run.data.params["train.lora.r"] == "8" and run.data.params["train.arm"] == "mosaic"
    assert run.data.metrics["cost/usd"] == pytest.approx(metrics["cost/usd"])
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train/loss")
    assert [h.step for h in history] == [1, 2]
    for name in ("train/learning_rate", "train/grad_norm", "throughput/step_tokens_per_second"):
        assert len(mlflow.MlflowClient().get_metric_history(run.info.run_id, name)) == 2
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"metrics.json", "cost.md", "cost.csv", "samples.json", "config.yaml"} <= artifacts
    # The adapter is the run's MLflow model (registered as mosaic-it-mosaic), not a loose folder.
    (logged,) = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert logged.source_run_id == run.info.run_id and logged.name == "mosaic"
    model_files = mlflow.MlflowClient().list_logged_model_artifacts(logged.model_id, "artifacts/model")
    assert {"adapter_model.safetensors", "tokenizer.json"} <= {Path(f.path).name for f in model_files}
    assert version_model_id(mlflow.MlflowClient().get_model_version("mosaic-it-mosaic", "1")) == logged.model_id
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.digest == file_md5(data)


def test_a_crashed_training_run_is_marked_failed(tmp_path, tiny_llama_dir, sample_data):
    data = tmp_path / "train.jsonl"
    write_jsonl(data, load_records(sample_data, max_records=8))
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment_name="crash",
                              artifact_location=str(tmp_path / "artifacts"))

    def crash(log):
        raise RuntimeError(f"device lost at step {log.step}")

    cfg = TrainConfig(model=str(tiny_llama_dir), data=str(data), output_dir=str(tmp_path / "out"), max_steps=3,
                      max_length=64, sample_max_new_tokens=0)
    with pytest.raises(RuntimeError, match="step 1"):
        run_training(cfg, tracking, callbacks=[crash])
    (run,) = mlflow.search_runs(experiment_names=["crash"], output_format="list")
    assert run.info.status == "FAILED"
    assert mlflow.active_run() is None


def test_missing_training_data_is_a_one_line_error(tmp_path, repo_root):
    proc = subprocess.run([*CLI, "train", "--params", str(repo_root / "params.yaml"), "--data", "nope.jsonl",
                           "-S", "tracking.enabled=false"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: nope.jsonl: training data not found (run the earlier stages first?)"]

"""Training fidelity: native bf16 only, executed FLOPs of packed rows, automatic gradient checkpointing."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.train.model import autocast_dtype

GPU = torch.device("cuda", 0)


@pytest.fixture
def gpu_of_capability(monkeypatch):
    """Pretend device 0 is a GPU of the given compute capability (torch's own query, patched)."""
    def install(major: int, minor: int, name: str) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_properties",
                            lambda device=None: SimpleNamespace(major=major, minor=minor, name=name))
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        # What the old check relied on: true on V100/T4 too, through emulation.
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return install


@pytest.mark.parametrize(("major", "minor", "name", "expected"), [
    (7, 0, "Tesla V100-SXM2-16GB", None),
    (7, 5, "Tesla T4", None),
    (8, 0, "NVIDIA A100-SXM4-40GB", torch.bfloat16),
    (8, 9, "NVIDIA L4", torch.bfloat16),
    (9, 0, "NVIDIA H100 80GB HBM3", torch.bfloat16),
])
def test_auto_uses_bf16_only_from_compute_capability_8(gpu_of_capability, major, minor, name, expected):
    gpu_of_capability(major, minor, name)
    assert autocast_dtype(TrainConfig(dtype="auto"), GPU) is expected
    assert autocast_dtype(TrainConfig(dtype="fp32"), GPU) is None


def test_explicit_bf16_on_an_emulating_gpu_is_a_one_line_error(gpu_of_capability):
    gpu_of_capability(7, 0, "Tesla V100-SXM2-16GB")
    with pytest.raises(MosaicItError, match=r"train.dtype=bf16: Tesla V100-SXM2-16GB has no native bf16") as err:
        autocast_dtype(TrainConfig(dtype="bf16"), GPU)
    assert "\n" not in str(err.value)
    gpu_of_capability(8, 0, "NVIDIA A100-SXM4-40GB")
    assert autocast_dtype(TrainConfig(dtype="bf16"), GPU) is torch.bfloat16


def test_cpu_trains_fp32_unless_bf16_is_asked_for():
    cpu = torch.device("cpu")
    assert autocast_dtype(TrainConfig(dtype="auto"), cpu) is None
    assert autocast_dtype(TrainConfig(dtype="bf16"), cpu) is torch.bfloat16


@pytest.mark.slow
def test_stage_time_includes_loading_and_saving_and_is_what_is_priced(tmp_path, tiny_llama_dir, sample_data,
                                                                        monkeypatch):
    import json
    import time

    import mlflow

    import mosaic_it.train.run as run
    from mosaic_it.config.tracking import CostConfig, TrackingConfig
    from mosaic_it.jsonl import write_jsonl
    from mosaic_it.train.data import load_records

    # Loading and the final save are made slow on purpose: the stage must pay for both, the loop for neither.
    real_load, real_save = run.load_model, run.save_trained
    monkeypatch.setattr(run, "load_model", lambda *a, **k: (time.sleep(0.6), real_load(*a, **k))[1])
    monkeypatch.setattr(run, "save_trained", lambda *a, **k: (time.sleep(0.4), real_save(*a, **k))[1])
    data = tmp_path / "train.jsonl"
    write_jsonl(data, load_records(sample_data, max_records=8))
    cfg = TrainConfig(model=str(tiny_llama_dir), data=str(data), output_dir=str(tmp_path / "out"), max_length=64,
                      batch_size=4, max_steps=2, sample_max_new_tokens=0, device="cpu")
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment_name="stage",
                              log_model=False)
    started = time.perf_counter()
    result = run.run_training(cfg, tracking, CostConfig(usd_per_device_hour=7.2))
    outside = time.perf_counter() - started

    m = json.loads(result.metrics_path.read_text())
    assert m["cost/stage_seconds"] - m["cost/loop_seconds"] >= 1.0  # at least the two sleeps
    assert m["cost/stage_seconds"] <= outside
    assert m["cost/wall_seconds"] == m["cost/stage_seconds"]
    assert m["cost/device_hours"] == pytest.approx(m["cost/stage_seconds"] / 3600)
    assert m["cost/usd"] == pytest.approx(m["cost/stage_seconds"] * 7.2 / 3600)
    assert m["cost/loop_usd"] == pytest.approx(m["cost/loop_seconds"] * 7.2 / 3600)
    assert m["throughput/tokens_per_second"] == pytest.approx(m["tokens/real"] / m["cost/loop_seconds"])
    assert "`cost/usd` price it" in (result.output_dir / "cost.md").read_text()

    mlflow.set_tracking_uri(tracking.tracking_uri)
    (logged,) = mlflow.search_runs(experiment_names=["stage"], output_format="list")
    for key in ("cost/stage_seconds", "cost/loop_seconds", "cost/usd", "cost/device_hours"):
        assert logged.data.metrics[key] == pytest.approx(m[key]), key
    assert logged.data.params["cost.priced_time"] == "cost/stage_seconds"

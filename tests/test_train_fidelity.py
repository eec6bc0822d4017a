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
    # gradient_checkpointing=auto ran without recomputation on CPU, and says so.
    assert logged.data.params["train.gradient_checkpointing"] == "False"
    assert "gradient_checkpointing: false" in (result.output_dir / "config.yaml").read_text()


GIB = 1024 ** 3


def test_auto_recomputes_a_7b_lora_run_only_where_its_activations_do_not_fit():
    import dataclasses

    from mosaic_it.plan.estimate import estimate
    from mosaic_it.plan.fit import setup_from_config
    from mosaic_it.plan.shape import load_shape
    from mosaic_it.train.recompute import needs_recompute

    # Llama-2-7B LoRA at 4 x 2,048 tokens: tens of GiB of activations on top of 12.6 GiB of bf16 weights.
    cfg = TrainConfig(model="meta-llama/Llama-2-7b-hf", batch_size=4, max_length=2048)
    assert needs_recompute(cfg, bf16=True, free_bytes=40 * GIB)
    assert not needs_recompute(cfg, bf16=True, free_bytes=139 * GIB)
    # The line is the memory plan's peak without recomputation, to the byte.
    setup = dataclasses.replace(setup_from_config(cfg, "cuda", True), gradient_checkpointing=False)
    peak = estimate(load_shape(cfg.model), setup).peak
    assert needs_recompute(cfg, bf16=True, free_bytes=peak - 1)
    assert not needs_recompute(cfg, bf16=True, free_bytes=peak)
    # One sample of 512 tokens fits a 40 GB card.
    small = cfg.model_copy(update={"batch_size": 1, "max_length": 512})
    assert not needs_recompute(small, bf16=True, free_bytes=40 * GIB)


def test_auto_is_off_on_cpu_and_true_false_are_kept(tiny_llama_dir):
    from mosaic_it.train.recompute import resolve_recompute

    cpu = torch.device("cpu")
    assert TrainConfig().gradient_checkpointing == "auto"  # the default
    assert resolve_recompute(TrainConfig(model=str(tiny_llama_dir)), cpu, None) is False
    assert resolve_recompute(TrainConfig(model=str(tiny_llama_dir), gradient_checkpointing=True), cpu, None) is True
    assert resolve_recompute(TrainConfig(model=str(tiny_llama_dir), gradient_checkpointing=False), GPU, None) is False


def test_auto_on_cuda_asks_the_device_what_is_free(monkeypatch):
    from mosaic_it.train.recompute import resolve_recompute

    cfg = TrainConfig(model="meta-llama/Llama-2-7b-hf", batch_size=4, max_length=2048)
    for free, expected in ((30 * GIB, True), (139 * GIB, False)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None, free=free: (free, 141 * GIB))
        assert resolve_recompute(cfg, GPU, torch.bfloat16) is expected


def test_load_model_resolves_auto_itself(tiny_llama_dir):
    from mosaic_it.train.model import load_model

    def recomputes(model) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())

    cpu = torch.device("cpu")
    assert not recomputes(load_model(TrainConfig(model=str(tiny_llama_dir), method="full"), cpu))
    forced = TrainConfig(model=str(tiny_llama_dir), method="full", gradient_checkpointing=True)
    assert recomputes(load_model(forced, cpu))


@pytest.mark.slow
def test_a_resumed_run_bills_the_stage_time_of_the_crashed_segment(tmp_path, tiny_llama_dir, sample_data,
                                                                   monkeypatch):
    import time

    import mosaic_it.train.run as run
    from mosaic_it.config.tracking import TrackingConfig
    from mosaic_it.jsonl import write_jsonl
    from mosaic_it.train.data import load_records

    data = tmp_path / "train.jsonl"
    write_jsonl(data, load_records(sample_data, max_records=8))
    cfg = TrainConfig(model=str(tiny_llama_dir), data=str(data), output_dir=str(tmp_path / "out"), max_length=64,
                      batch_size=2, max_steps=3, save_every=1, sample_max_new_tokens=0, device="cpu")

    def crash_at_step_2(log):
        if log.step == 2:
            raise KeyboardInterrupt("killed")

    real_load = run.load_model
    monkeypatch.setattr(run, "load_model", lambda *a, **k: (time.sleep(1.5), real_load(*a, **k))[1])
    with pytest.raises(KeyboardInterrupt):
        run.run_training(cfg, TrackingConfig(enabled=False), callbacks=[crash_at_step_2])
    monkeypatch.setattr(run, "load_model", real_load)
    started = time.perf_counter()
    result = run.run_training(cfg, TrackingConfig(enabled=False))
    second_segment = time.perf_counter() - started
    # The first segment's slow loading (before its step-1 checkpoint) is still on the bill: the
    # stage is longer than the whole second segment could be on its own.
    assert result.metrics["train/steps"] == 3
    assert result.metrics["cost/stage_seconds"] >= 1.5
    assert result.metrics["cost/stage_seconds"] > second_segment

"""Clean logs: the known third-party warnings stay out of a run (each silenced by exact message),
and the CLI prints the core's lines once on stderr."""
from __future__ import annotations

import logging
import warnings

import pytest

from mosaic_it.jsonl import write_jsonl


def test_logging_a_data_set_with_an_integer_column_warns_nothing(tmp_path):
    import mlflow

    from mosaic_it import tracking as track
    from mosaic_it.config.tracking import TrackingConfig

    data = tmp_path / "mosaic.jsonl"
    write_jsonl(data, [{"instruction": "a", "input": "", "output": "b", "count": 2},
                       {"instruction": "c", "input": "", "output": "d", "count": 3}])
    cfg = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment_name="logs",
                         artifact_location=str(tmp_path / "artifacts"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with track.stage_run("train:mosaic", cfg) as run:
            md5 = track.log_jsonl_dataset(data, "mosaic-train")
    (dataset,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert dataset.dataset.digest == md5 and '"count"' in dataset.dataset.schema


def test_loading_an_adapter_for_evaluation_warns_nothing(tmp_path, tiny_llama_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from mosaic_it.evaluate.model import load_model
    from mosaic_it.logs import peft_on_transformers_v5

    with peft_on_transformers_v5():
        adapter = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
                                 LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    adapter.save_pretrained(tmp_path / "adapter")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        model, _ = load_model(str(tmp_path / "adapter"), "cpu")
    assert not hasattr(model, "peft_config")  # merged into its base


def test_other_future_warnings_still_show():
    from mosaic_it.logs import peft_on_transformers_v5

    with pytest.warns(FutureWarning, match="something else"), peft_on_transformers_v5():
        warnings.warn("something else is deprecated", FutureWarning)


@pytest.fixture
def core_logger():
    core = logging.getLogger("mosaic_it")
    before = (list(core.handlers), core.level)
    yield core
    core.handlers[:], core.level = before


def test_cli_logging_prints_each_core_line_once_on_stderr(core_logger, capsys):
    from mosaic_it.logs import setup_cli_logging

    setup_cli_logging()
    setup_cli_logging()
    logging.getLogger("mosaic_it.train.run").info("train mosaic: wrote runs/train/mosaic")
    logging.getLogger("mosaic_it.train.run").debug("not shown")
    captured = capsys.readouterr()
    assert captured.err == "train mosaic: wrote runs/train/mosaic\n" and captured.out == ""
    assert core_logger.propagate  # pytest's caplog and any other root handler still see the records
    assert logging.getLogger("mlflow.system_metrics").level == logging.WARNING

"""A tiny study end to end (2 seeds x 2 arms, a random tiny Llama, a few steps): started by the CLI,
killed mid-way, finished by the Prefect flow without redoing a finished step; one MLflow parent per
study with every cell's runs under it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servers import scratch_repo, tiny_params, venv_env

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CELLS = [(seed, arm) for seed in (0, 1) for arm in ("baseline", "mosaic")]


def study_params(model_dir: Path) -> dict:
    params = tiny_params(model_dir)
    params["evaluate"].update({"evals": ["heldout", "mosaic_following", "ifeval"], "mosaic_max_new_tokens": 4})
    params["study"] = {
        "records": "runs/split/train.jsonl", "max_records": 8, "output_dir": "runs/study",
        "report_dir": "study/report", "seeds": [0, 1], "arms": ["baseline", "mosaic"],
        "baseline_epochs": 1, "mosaic_epochs": 1, "n_boot": 200,
        "evaluation": {"heldout_limit": 3, "mosaic_per_rule": 1, "ifeval_limit": 3, "max_new_tokens": 4,
                       "mosaic_max_new_tokens": 4},
    }
    return params


@pytest.fixture
def repo(tmp_path, tiny_llama_dir, sample_data, monkeypatch):
    path = scratch_repo(tmp_path / "repo", study_params(tiny_llama_dir))
    records = json.loads(sample_data.read_text(encoding="utf-8"))
    split = path / "runs" / "split"
    split.mkdir(parents=True)
    for name, rows in (("train.jsonl", records[:20]), ("heldout.jsonl", records[100:106])):
        (split / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monkeypatch.chdir(path)
    return path


def study_cli(repo: Path, *args: str) -> subprocess.Popen:
    script = Path(sys.executable).with_name("mosaic-it")
    return subprocess.Popen([str(script), "study", *args], cwd=repo, env=venv_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def markers(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted((repo / "runs" / "study").glob("seed*/done/*.json"))}


@pytest.mark.slow
def test_killed_cli_study_is_finished_by_the_prefect_flow_without_redoing_a_step(repo, prefect_api):
    """One study, two drivers: the CLI is killed (SIGKILL) once seed 0's cells are done, the Prefect
    flow finishes it under the MLflow parent the CLI opened, and a last CLI run finds nothing to do."""
    from mlflow import MlflowClient

    from flows.study import study_flow

    first = study_cli(repo)
    done_marker = repo / "runs" / "study" / "seed0" / "done" / "evaluate-mosaic.json"
    deadline = time.monotonic() + 600
    while not done_marker.exists():
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, "the first cell never finished"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    finished = markers(repo)
    assert {"runs/study/seed0/done/train-baseline.json", "runs/study/seed0/done/evaluate-mosaic.json"} <= set(finished)

    result = study_flow()

    after = markers(repo)
    assert all(after[name] == content for name, content in finished.items())  # not one finished step redone
    assert len(after) == 2 + 2 * len(CELLS)  # augment per seed, train and evaluate per cell
    report = Path(result["report"]).read_text(encoding="utf-8")
    assert "ifeval/prompt_strict" in report and "heldout/loss" in report
    for seed, arm in CELLS:
        metrics = json.loads((repo / "runs" / "study" / f"seed{seed}" / "train" / arm / "metrics.json").read_text())
        # Both arms make one pass (baseline_epochs 1 here) over what they train on, at batch 2.
        assert metrics["train/steps"] == -(-metrics["train/samples"] // 2)

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = client.search_runs(experiments, "tags.`mosaic_it.stage` = 'study'")
    assert [p.info.run_id for p in parents] == [result["mlflow_run_id"]]  # the CLI's parent, found again
    children = client.search_runs(experiments, f"tags.mlflow.parentRunId = '{result['mlflow_run_id']}'")
    cells = {(c.data.tags.get("mosaic_it.seed"), c.data.tags.get("mosaic_it.arm"), c.data.tags["mosaic_it.stage"].split(":")[0])
             for c in children}
    # Every cell's runs, the CLI's (seed 0) and the flow's, nest under the one study parent.
    assert cells >= {(str(s), a, stage) for s, a in CELLS for stage in ("train", "evaluate")}, [
        (r.info.run_name, r.data.tags.get("mlflow.parentRunId"), r.data.tags.get("mosaic_it.seed"))
        for r in client.search_runs(experiments)]
    assert any(a.path == "study" for a in client.list_artifacts(result["mlflow_run_id"]))

    last = study_cli(repo, "--no-report")
    out, _ = last.communicate(timeout=300)
    assert last.returncode == 0 and f"0 step(s) run, {len(after) + 1} already done" in out, out  # + the records


@pytest.mark.slow
def test_equal_tokens_arm_sees_as_many_real_tokens_as_the_mosaic_arm(repo):
    from mosaic_it.config import load_params
    from mosaic_it.study import run

    params = load_params("params.yaml", ["study.seeds=[0]", "study.arms=[baseline,mosaic,baseline_equal_tokens]",
                                         "tracking.enabled=false"])
    run.prepare_records(params)
    run.augment_seed(params, 0)
    for arm in ("mosaic", "baseline_equal_tokens"):
        run.train_cell(params, 0, arm)
    metrics = {arm: json.loads((repo / "runs" / "study" / "seed0" / "train" / arm / "metrics.json").read_text())
               for arm in ("mosaic", "baseline_equal_tokens")}
    assert run.arm_epochs(params, 0, "baseline_equal_tokens") != 1.0
    # Training runs whole micro-batches, so the plain arm misses the target by less than one batch.
    one_batch = params.train.max_length * params.train.batch_size
    gap = metrics["baseline_equal_tokens"]["tokens/real"] - metrics["mosaic"]["tokens/real"]
    assert abs(gap) < one_batch

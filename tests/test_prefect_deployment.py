"""The `demo` deployment end to end: a real Prefect server (the session's), `prefect deploy` from
prefect.yaml, a process worker, `prefect deployment run` from the CLI, and the MLflow runs the flow produced.

Runs in a scratch copy of the repository on a tiny configuration (40 records, a random 2-layer
Llama for two optimizer steps, a few eval prompts): the test is about orchestration, and the real
embedded model's training and evaluation are tested elsewhere (test_train_mlflow, test_eval_model).
Server and worker are always torn down.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from servers import VENV_BIN, background, scratch_repo, tail, tiny_params, venv_env

# The Prefect server harness's SQLAlchemy models warn on every query; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

POOL = "mosaic-it-local"
GPU_POOL = "mosaic-it-gpu"  # the `gpu` deployment's pool; only created here, no worker serves it
STAGE_RUNS = {"validate", "split", "augment", "train:mosaic", "evaluate:mosaic"}
ARTIFACTS = {"validation-report", "held-out-split", "mosaic-stats", "cost-mosaic", "evaluation-mosaic"}


def prefect(repo: Path, env: dict[str, str], *args: str) -> str:
    # prefect.yaml pins the flow's working directory to {{ $PWD }}: set it as a shell's `cd` would.
    done = subprocess.run([str(VENV_BIN / "prefect"), *args], cwd=repo, env={**env, "PWD": str(repo)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def api(env: dict[str, str], method: str, path: str, body: dict | None = None):
    response = httpx.request(method, env["PREFECT_API_URL"] + path, json=body, timeout=30)
    response.raise_for_status()
    return response.json()


@pytest.mark.slow
def test_demo_deployment_completes_and_logs_one_parent_mlflow_run(tmp_path, tiny_llama_dir, prefect_api):
    from mlflow import MlflowClient
    from prefect.settings import PREFECT_API_URL

    repo = scratch_repo(tmp_path / "repo", tiny_params(tiny_llama_dir))
    # The session's Prefect server (a server start costs tens of seconds); what this test creates
    # (two pools, four deployments, two flow runs) has names no other test uses, and every check
    # below reads back by those names or by this flow run's id.
    env = venv_env(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_API_URL=PREFECT_API_URL.value(),
                   PREFECT_LOGGING_LEVEL="INFO")
    for pool in (POOL, GPU_POOL):
        prefect(repo, env, "work-pool", "create", pool, "--type", "process")
    prefect(repo, env, "--no-prompt", "deploy", "--all")
    deployed = {d["name"] for d in api(env, "POST", "/deployments/filter", {})}
    assert {"demo", "compare", "gpu", "gpu-fsdp"} <= deployed

    started = prefect(repo, env, "deployment", "run", "mosaic-it-pipeline/demo")
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", started).group(1)
    worker_log = tmp_path / "worker.log"
    worker = [str(VENV_BIN / "prefect"), "worker", "start", "--pool", POOL, "--run-once"]
    with background(worker, worker_log, env, cwd=tmp_path) as proc:
        proc.wait(timeout=300)

    flow_run = api(env, "GET", f"/flow_runs/{flow_run_id}")
    assert flow_run["state"]["type"] == "COMPLETED", tail(worker_log, 8000)
    task_runs = api(env, "POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
    assert {t["name"].rsplit("-", 1)[0] for t in task_runs} >= {"validate", "split", "augment", "train", "evaluate"}
    assert {t["state"]["type"] for t in task_runs} == {"COMPLETED"}
    artifacts = api(env, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    by_key = {a["key"]: a for a in artifacts}
    assert ARTIFACTS <= set(by_key)

    # The override syntax docs/orchestration.md shows reaches the flow as a mapping.
    later = prefect(repo, env, "deployment", "run", "mosaic-it-pipeline/gpu",
                    "--param", 'overrides={"train.max_steps": 4}', "--param", "num_processes=2")
    later_id = re.search(r"UUID: ([0-9a-f-]{36})", later).group(1)
    assert api(env, "GET", f"/flow_runs/{later_id}")["parameters"] == {
        "params_path": "params.yaml", "launcher": "accelerate", "overrides": {"train.max_steps": 4},
        "num_processes": 2}

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [r for r in runs if r.data.tags.get("prefect.flow_run_id") == flow_run_id]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "mosaic-it-pipeline"
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == STAGE_RUNS
    assert all(r.info.status == "FINISHED" for r in children.values())
    assert children["train:mosaic"].data.params["derived.steps"] == "2"
    evaluated = children["evaluate:mosaic"]
    assert evaluated.data.params["consumed.train_run_id"] == children["train:mosaic"].info.run_id
    # The parent run carries its children's headline numbers, per arm.
    assert parent.data.metrics["mosaic/heldout/loss"] == evaluated.data.metrics["heldout/loss"]
    assert parent.data.metrics["mosaic/cost/usd"] == children["train:mosaic"].data.metrics["cost/usd"]
    for stage, key in (("validate", "validation-report"), ("evaluate:mosaic", "evaluation-mosaic")):
        assert by_key[key]["data"].count(children[stage].info.run_id) == 1  # one link to its MLflow run
    assert (repo / "runs" / "evaluate" / "mosaic" / "metrics.json").exists()

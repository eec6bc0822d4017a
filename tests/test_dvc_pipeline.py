"""`dvc repro` and `dvc exp run` on the real dvc.yaml, in a scratch copy of the repository.

The stages run the real `mosaic-it` CLI on a tiny configuration (40 records, a random 2-layer
Llama, two optimizer steps, a handful of eval prompts), so the whole pipeline takes seconds.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from servers import GIT_IDENTITY, VENV_BIN, scratch_repo, tiny_params, venv_env

STAGES = ("validate", "split", "augment", "train@baseline", "train@mosaic", "evaluate@baseline", "evaluate@mosaic",
          "compare")
DOWNSTREAM_OF_AUGMENT = {"augment", "train@mosaic", "evaluate@mosaic", "compare"}


def dvc(repo: Path, *args: str) -> str:
    done = subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=repo, env=venv_env(), capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def dvc_json(repo: Path, *args: str):
    """A DVC command's --json answer (stdout only: warnings go to stderr)."""
    import json

    done = subprocess.run([str(VENV_BIN / "dvc"), *args, "--json"], cwd=repo, env=venv_env(), capture_output=True,
                          text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([a-z@]+)'", output))


def skipped(output: str) -> set[str]:
    return set(re.findall(r"Stage '([a-z@]+)' didn't change, skipping", output))


@pytest.fixture
def repo(tmp_path, tiny_llama_dir) -> Path:
    params = tiny_params(tiny_llama_dir)
    params["evaluate"].update({"evals": ["heldout", "mosaic_following", "ifeval"], "mosaic_per_rule": 1,
                               "mosaic_max_instructions": 2, "mosaic_max_new_tokens": 4})
    # What is tested here is DVC (stages, skips, experiments, remotes, metrics and plots); stage runs
    # in MLflow are tested in test_prefect_deployment and test_train_mlflow. Without tracking, each
    # of the twelve stage processes skips importing MLflow and opening its store (seconds each).
    params["tracking"]["enabled"] = False
    return scratch_repo(tmp_path / "repo", params)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=venv_env(**GIT_IDENTITY), check=True, capture_output=True)


def test_dvc_stages_read_only_their_own_params_section(repo_root):
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert tuple(stages) == ("validate", "split", "augment", "train", "evaluate", "compare")
    for name, stage in stages.items():
        stage = stage.get("do", stage)  # a foreach stage (one per arm) declares its body under `do`
        assert stage["params"] == [name], name
        assert stage["cmd"].split()[:2] == ["mosaic-it", name], name


@pytest.mark.slow
def test_repro_skips_unchanged_stages_and_an_experiment_reruns_downstream_of_its_change(repo):
    first = dvc(repo, "repro")
    assert ran(first) == set(STAGES)
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    outputs = ["runs/validate/valid.jsonl", "runs/split/train.jsonl", params["augment"]["output"],
               "runs/augment/stats/stats.json", "runs/compare/report.md"]
    for arm in ("baseline", "mosaic"):
        outputs += [f"runs/train/{arm}/model", f"runs/train/{arm}/metrics.json", f"runs/evaluate/{arm}/metrics.json"]
    for path in outputs:
        assert (repo / path).exists(), path
    assert "heldout/loss" in dvc(repo, "metrics", "show", "--json")
    git(repo, "add", "dvc.lock")  # a run worth keeping, as docs/orchestration.md says
    git(repo, "commit", "-q", "-m", "pipeline results")

    # A local remote, as docs/orchestration.md sets one up: push, then pull into an empty cache.
    dvc(repo, "remote", "add", "-d", "local", str(repo.parent / "dvc-remote"))
    dvc(repo, "push")
    assert "in sync" in dvc(repo, "status", "--cloud")
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "runs" / "split")
    dvc(repo, "pull", "dvc.yaml")  # this pipeline's outputs (study/dvc.yaml has its own, maybe never run)
    assert (repo / "runs" / "split" / "train.jsonl").exists()

    again = dvc(repo, "repro")
    assert ran(again) == set() and skipped(again) == set(STAGES)

    # One augment parameter changed: augment and what depends on it rerun, validate and split do not.
    experiment = dvc(repo, "exp", "run", "-S", "augment.wrap_mode=exp")
    assert ran(experiment) == DOWNSTREAM_OF_AUGMENT
    assert skipped(experiment) == set(STAGES) - DOWNSTREAM_OF_AUGMENT
    assert "Ran experiment" in experiment
    assert yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))["augment"]["wrap_mode"] == "exp"
    names = dvc(repo, "exp", "list", "--name-only").split()
    assert len(names) == 1
    assert_both_revisions_compare(repo, "main", names[0])


def numbers(tree: dict) -> bool:
    return bool(tree) and all(isinstance(v, (int, float)) for v in tree.values())


def assert_both_revisions_compare(repo: Path, baseline: str, experiment: str) -> None:
    """exp show, metrics diff and plots diff read both revisions' metrics and plot data (of this
    pipeline: study/dvc.yaml's are not made here)."""
    rows = dvc_json(repo, "exp", "show")
    main = next(r for r in rows if r["name"] == baseline)
    exp = main["experiments"][0]["revs"][0]
    assert exp["name"] == experiment
    for row in (main, exp):
        metrics = row["data"]["metrics"]  # study/dvc.yaml's metrics are there too, unrun here
        assert row["error"] is None
        for arm in ("baseline", "mosaic"):
            for path in (f"runs/evaluate/{arm}/metrics.json", f"runs/train/{arm}/metrics.json"):
                assert "error" not in metrics[path] and numbers(metrics[path]["data"]), (row["name"], path)
    assert main["data"]["params"]["params.yaml"]["data"]["augment"]["wrap_mode"] == "uniform"
    assert exp["data"]["params"]["params.yaml"]["data"]["augment"]["wrap_mode"] == "exp"

    paths = ("runs/evaluate/baseline/metrics.json", "runs/evaluate/mosaic/metrics.json",
             "runs/augment/stats/stats.json", "runs/compare/metrics.json")
    diff = dvc_json(repo, "metrics", "diff", baseline, experiment, "--all", "--targets", *paths)
    for path in paths:  # a key only one revision has (a rule drawn only once) shows None on the other side
        assert any(isinstance(d["old"], (int, float)) and isinstance(d["new"], (int, float))
                   for d in diff[path].values()), path
    loss = diff["runs/evaluate/mosaic/metrics.json"]["heldout/loss"]
    assert loss["diff"] == pytest.approx(loss["new"] - loss["old"])
    # Another wrap mode draws other numbers of instructions per sample.
    assert any(d["old"] != d["new"] for d in diff["runs/augment/stats/stats.json"].values())

    drawn = (("IFEval per instruction (strict)", "instruction", "strict"),
             ("Mosaic following per rule (format followed)", "rule", "format"))
    plots = dvc_json(repo, "plots", "diff", baseline, experiment)
    assert "data" in plots, (plots, dvc(repo, "plots", "diff", baseline, experiment, "--json"))
    assert not [e for e in plots.get("errors", []) if e["name"] in {name for name, _, _ in drawn}]
    for name, field, column in drawn:
        (plot,) = plots["data"][name]
        assert plot["revisions"] == [baseline, experiment]
        assert plot["content"]["encoding"]["y"]["field"] == field
        assert plot["content"]["encoding"]["x"]["field"] == column
        values = plot["content"]["data"]["values"]
        assert {v["rev"] for v in values} == {baseline, experiment} and all(v[field] for v in values)

"""`dvc repro study/dvc.yaml` in a scratch copy: the seed x arm matrix runs through the real CLI,
a second repro skips everything, and an evaluation-only change re-evaluates every cell without
retraining any (the train markers persist with their train folders)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from servers import scratch_repo
from test_dvc_pipeline import dvc
from test_study_run import CELLS, markers, study_params

STUDY_STAGES = {"records", "augment@0", "augment@1", "report"} | {f"cell@{s}-{a}" for s, a in CELLS}


def ran(output: str) -> set[str]:
    return {name.removeprefix("study/dvc.yaml:") for name in re.findall(r"Running stage '([^']+)'", output)}


@pytest.fixture
def repo(tmp_path, tiny_llama_dir) -> Path:
    params = study_params(tiny_llama_dir)
    # What is tested here is DVC's matrix and its skips; the study's MLflow runs are tested in
    # test_study_run. Without tracking, each of the 15 stage processes starts seconds sooner.
    params["tracking"]["enabled"] = False
    return scratch_repo(tmp_path / "repo", params)


@pytest.mark.slow
def test_study_pipeline_runs_the_matrix_and_reruns_only_evaluation(repo):
    first = ran(dvc(repo, "repro", "study/dvc.yaml"))
    assert STUDY_STAGES <= first and {"validate", "split"} <= first  # upstream stages of the root dvc.yaml
    assert "headline" in (repo / "study" / "report" / "report.md").read_text(encoding="utf-8").lower()
    assert ran(dvc(repo, "repro", "study/dvc.yaml")) == set()

    trained = {k: v for k, v in markers(repo).items() if "/train-" in k}
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    params["study"]["evaluation"]["ifeval_limit"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    again = ran(dvc(repo, "repro", "study/dvc.yaml"))
    assert again == {f"cell@{s}-{a}" for s, a in CELLS} | {"report"}
    assert {k: v for k, v in markers(repo).items() if "/train-" in k} == trained

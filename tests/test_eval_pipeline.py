"""`run_evaluation` for two arms and `run_compare` with a live judge, MLflow and the CLI, end to end."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from mosaic_it.config.evaluate import CompareConfig, EvaluateConfig, GenerationConfig, JudgeConfig
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.evaluate.compare import run_compare
from mosaic_it.evaluate.run import run_evaluation
from mosaic_it.jsonl import write_json, write_jsonl
from mosaic_it.tracking import file_md5
from mosaic_it.study.report import num
from test_judge import KEY, JudgeServer


def evaluate_cfg(tmp_path, repo_root, model, arm):
    return EvaluateConfig(
        model=str(model), arm=arm, heldout=str(tmp_path / "heldout.jsonl"), output_dir=str(tmp_path / "evaluate"),
        device="cpu", generation=GenerationConfig(max_new_tokens=6, batch_size=16),
        heldout_limit=8, mosaic_per_rule=1, mosaic_max_instructions=3, mosaic_max_new_tokens=6,
        ifeval_path=str(repo_root / "data/eval/ifeval_input_data.jsonl"), ifeval_limit=3,
        pairwise_dir=str(repo_root / "data/eval"), pairwise_sets=["vicuna", "koala"], pairwise_limit=2,
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, sample_data):
    root = tmp_path_factory.mktemp("eval")
    write_jsonl(root / "heldout.jsonl", json.loads(sample_data.read_text(encoding="utf-8"))[:30])
    return root


@pytest.mark.slow
def test_evaluate_two_arms_then_compare_with_a_judge(workspace, repo_root, tiny_llama_dir, monkeypatch):
    import mlflow

    tracking = TrackingConfig(tracking_uri=f"sqlite:///{workspace / 'mlflow.db'}", experiment_name="eval-test")
    results = {arm: run_evaluation(evaluate_cfg(workspace, repo_root, tiny_llama_dir, arm), tracking)
               for arm in ("baseline", "mosaic")}
    metrics = results["baseline"].metrics
    for key in ("heldout/loss", "heldout/perplexity", "mosaic_following/count", "mosaic_following/probes",
                "ifeval/prompt_strict", "ifeval/instruction_loose", "pairwise/vicuna/prompts"):
        assert key in metrics, key
    assert metrics["mosaic_following/probes"] == 16 and metrics["ifeval/prompts"] == 3
    assert metrics["generation/seconds"] > 0  # the three generating evals were answered in one call
    assert results["mosaic"].metrics["heldout/loss"] == metrics["heldout/loss"]  # same model, same data
    arm_dir = workspace / "evaluate" / "baseline"
    assert json.loads((arm_dir / "metrics.json").read_text()) == pytest.approx(metrics)
    for name in ("plots/mosaic_following.csv", "plots/mosaic_following.png", "plots/ifeval.png", "plots/summary.png",
                 "generations/ifeval.jsonl", "generations/mosaic_following.jsonl", "generations/pairwise/koala.jsonl"):
        assert (arm_dir / name).stat().st_size > 0, name

    # Training metrics carry the cost; compare reads whatever keys are there.
    for arm, usd in (("baseline", 2.0), ("mosaic", 0.5)):
        write_json(workspace / "train" / arm / "metrics.json", {"cost/usd": usd, "tokens/real": 1000})
    monkeypatch.setenv("TEST_JUDGE_KEY", KEY)
    with JudgeServer() as server:
        judge = JudgeConfig(url=server.url, model="judge", api_key_env="TEST_JUDGE_KEY", backoff_s=0.01)
        paths = run_compare(CompareConfig(evaluate_dir=str(workspace / "evaluate"), train_dir=str(workspace / "train"),
                                          output_dir=str(workspace / "compare"), judge=judge), tracking)
    assert len(server.requests) == 2 * 2 * 2  # two sets, two prompts, both orders
    summary = json.loads(paths.metrics.read_text())
    for name in ("vicuna", "koala"):
        counts = [summary[f"pairwise/{name}/{o}"] for o in ("win", "tie", "lose", "error")]
        assert sum(counts) == 2
        # Same model, greedy: identical answers always tie.
        assert summary[f"pairwise/{name}/tie"] == 2
    assert summary["delta/cost/usd"] == -1.5 and summary["delta/heldout/loss"] == 0
    report = paths.report.read_text()
    assert report.index("## Headline") < report.index("## Pairwise judging") < report.index("## Cost") < report.index("## Breakdowns")
    # Cost is a ratio, not a delta; every difference in the report has its n and an item-bootstrap CI.
    assert "| $ | 2 | 0.5 | 0.25 |" in report and "| vicuna | 0 | 2 | 0 | 0 | 1 |" in report
    stats = json.loads((workspace / "compare" / "summary.json").read_text())
    headline = {r["metric"]: r for r in stats["headline"]}
    loss = headline["heldout/loss"]
    assert (loss["seeds"], loss["items"]) == (1, 8) and loss["difference"] == 0 and loss["ci"] == [0, 0]
    assert f"| heldout/loss | 1 × 8 records (≈{num(loss['weight_per_cell'])} response tokens per seed) |" in report
    assert headline["pairwise/win_rate"]["mean"]["mosaic"] == 0.5 and headline["pairwise/win_rate"]["items"] == 4
    assert headline["ifeval/prompt_strict"]["items"] == 3
    table = report.split("## Headline", 1)[1].split("\n\n")[1].splitlines()[2:]
    assert len(table) == len(stats["headline"]) and all(re.search(r"\| \[[^]]+\] \| .+ \|$", line) for line in table)
    assert "by_rule" not in report.split("## Breakdowns", 1)[0]  # per-rule rows come after, each with its n
    assert {p.name for p in paths.plots} == {"forest.png", "metrics.png", "cost.png", "pairwise.png"}
    assert KEY not in "".join(p.read_text() for p in (workspace / "compare").rglob("*") if p.suffix in (".md", ".json", ".jsonl", ".csv"))

    mlflow.set_tracking_uri(tracking.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["eval-test"], output_format="list")
    by_stage = {(r.data.tags["mosaic_it.stage"], r.data.tags.get("mosaic_it.arm")): r for r in runs}
    evaluated = by_stage[("evaluate:baseline", "baseline")]
    assert evaluated.info.run_name == "evaluate:baseline"
    assert evaluated.data.metrics["heldout/loss"] == pytest.approx(metrics["heldout/loss"])
    assert evaluated.data.params["consumed.heldout_md5"] == file_md5(workspace / "heldout.jsonl")
    assert by_stage[("compare", None)].data.metrics["pairwise/koala/tie"] == 2
    assert all(r.info.status == "FINISHED" for r in runs)


def run_cli(*args, cwd):
    code = "from mosaic_it.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_evaluate_defaults_from_params_and_one_line_errors(workspace, repo_root, tiny_llama_dir, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        f"evaluate:\n  model: {tiny_llama_dir}\n  heldout: {workspace / 'heldout.jsonl'}\n"
        f"  output_dir: {tmp_path / 'out'}\n  heldout_limit: 4\n  device: cpu\n"
        "tracking:\n  enabled: false\n"
    )
    done = run_cli("evaluate", "--params", str(params), "--arm", "cli", "--eval", "heldout", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "cli: heldout/loss" in done.stdout
    assert json.loads((tmp_path / "out" / "cli" / "metrics.json").read_text())["heldout/records"] == 4

    failed = run_cli("evaluate", "--params", str(params), "-S", "evaluate.model=/no/such/model", cwd=tmp_path)
    assert failed.returncode == 2 and failed.stderr.startswith("error: model directory") and "Traceback" not in failed.stderr
    bad_eval = run_cli("evaluate", "--params", str(params), "--eval", "nope", cwd=tmp_path)
    assert bad_eval.returncode == 2 and bad_eval.stderr.startswith("error: evals")
    no_arms = run_cli("compare", "--params", str(params), "-S", f"compare.evaluate_dir={tmp_path / 'none'}", cwd=tmp_path)
    assert no_arms.returncode == 2 and "metrics not found" in no_arms.stderr

"""Per-item scores from real evaluate outputs: they reproduce metrics.json exactly and pair across arms."""
from __future__ import annotations

import json

import pytest

from mosaic_it.evaluate.items import item_scores, ratio
from mosaic_it.evaluate.run import run_evaluation
from mosaic_it.jsonl import write_jsonl
from test_eval_pipeline import evaluate_cfg

HEADLINE = ("heldout/loss", "mosaic_following/format", "mosaic_following/count",
            "mosaic_following/order_kendall_tau", "mosaic_following/mask", "ifeval/prompt_strict",
            "ifeval/prompt_loose", "ifeval/instruction_strict", "ifeval/instruction_loose")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, sample_data, repo_root, tiny_llama_dir):
    root = tmp_path_factory.mktemp("items")
    write_jsonl(root / "heldout.jsonl", json.loads(sample_data.read_text(encoding="utf-8"))[:20])
    cfg = evaluate_cfg(root, repo_root, tiny_llama_dir, "baseline").model_copy(
        update={"evals": ["heldout", "mosaic_following", "ifeval"], "ifeval_limit": 4, "heldout_limit": 6})
    results = [run_evaluation(cfg.model_copy(update={"arm": arm})) for arm in ("baseline", "mosaic")]
    return {r.arm: (r.out_dir, json.loads(r.metrics_path.read_text(encoding="utf-8"))) for r in results}


@pytest.mark.slow
def test_every_item_metric_recomputes_metrics_json_exactly(evaluated):
    arm_dir, metrics = evaluated["baseline"]
    scores = item_scores(arm_dir)
    for name in HEADLINE:
        assert (name in scores) == (name in metrics), name  # both or neither (tau needs 2 matched answers)
    for name in ("heldout/loss", "mosaic_following/count", "mosaic_following/order_exact", "ifeval/prompt_strict",
                 "ifeval/instruction_loose"):
        assert name in scores, name
    breakdowns = [k for k in scores if k.startswith(("ifeval/strict/", "mosaic_following/by_rule/"))]
    assert any(k.startswith("mosaic_following/by_rule/order/REVERSE/") for k in breakdowns) and breakdowns
    for name, items in scores.items():
        assert ratio(items.values()) == metrics[name], name  # exact, not approx
    assert len(scores["heldout/loss"]) == metrics["heldout/records"] == 6
    assert sum(d for _, d in scores["heldout/loss"].values()) == metrics["heldout/tokens"]
    assert len(scores["ifeval/prompt_strict"]) == 4
    assert sum(d for _, d in scores["ifeval/instruction_strict"].values()) == sum(
        len(json.loads(line)["strict"]) for line in (arm_dir / "generations/ifeval.jsonl").read_text().splitlines())
    # Order metrics exist only on order probes (tau also needs two matched answers); mask only on mask probes.
    order_items = scores["mosaic_following/order_exact"]
    assert all(item.startswith("order/") for item in order_items)
    assert len(scores["mosaic_following/count"]) == metrics["mosaic_following/probes"] == 16
    assert all(item.startswith("mask/") for item in scores["mosaic_following/mask"])


@pytest.mark.slow
def test_item_ids_pair_across_arms(evaluated):
    base, cand = (item_scores(evaluated[arm][0]) for arm in ("baseline", "mosaic"))
    for name in ("heldout/loss", "ifeval/prompt_strict", "mosaic_following/count"):
        assert set(base[name]) == set(cand[name]), name
    assert base["heldout/loss"] == cand["heldout/loss"]  # same model, same records: same per-record loss
    assert sorted(base["ifeval/prompt_strict"]) == sorted(
        str(json.loads(line)["key"]) for line in (evaluated["baseline"][0] / "generations/ifeval.jsonl").read_text().splitlines())

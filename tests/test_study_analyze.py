"""analyze_study on hand-written cell folders: headline first, n and CI beside every number, summary
and report agree, few-item rows marked, pad_to_max cost derived, judge win rate with ties as half."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml

from mosaic_it.errors import MosaicItError
from mosaic_it.evaluate.items import write_items
from mosaic_it.jsonl import write_json, write_jsonl
from mosaic_it.study.analyze import HEADLINE, analyze_study
from mosaic_it.study.cells import CellDirs
from mosaic_it.study.report import interval, num

SEEDS = (0, 1, 2)
ARMS = ("baseline", "mosaic", "baseline_equal_tokens")
PROMPTS, RECORDS, FORMAT_PROBES, REVERSE_PROBES = 60, 40, 30, 3


def write_cell(root, arm, seed, rng):
    eval_dir, train_dir = root / f"seed{seed}" / "evaluate" / arm, root / f"seed{seed}" / "train" / arm
    lift = 0.5 if arm == "mosaic" else 0.0
    ifeval = []
    for k in range(PROMPTS):  # the same answers in every arm: no difference to find
        strict = [bool((k + seed + j) % 3) for j in range(1 + k % 2)]
        ifeval.append((str(1000 + k), {"prompt_strict": (float(all(strict)), 1.0), "prompt_loose": (float(all(strict)), 1.0),
                                       "instruction_strict": (float(sum(strict)), float(len(strict))),
                                       "instruction_loose": (float(sum(strict)), float(len(strict))),
                                       "strict/punctuation:no_comma": (float(strict[0]), 1.0)}))
    write_items(eval_dir, "ifeval", ifeval)
    probes = []
    for k in range(FORMAT_PROBES):
        ok = float(rng.random() < 0.3 + lift)
        probes.append((f"format#{k}:abc", {"format": (ok, 1.0), "count": (ok, 1.0),
                                            "by_rule/format/format": (ok, 1.0), "by_rule/format/count": (ok, 1.0)}))
    for k in range(REVERSE_PROBES):
        tau = float(rng.uniform(-1, 1))
        probes.append((f"order/REVERSE#{k}:def", {"count": (1.0, 1.0), "order_kendall_tau": (tau, 1.0),
                                                   "by_rule/order/REVERSE/kendall_tau": (tau, 1.0)}))
    write_items(eval_dir, "mosaic_following", probes)
    tokens = [int(t) for t in rng.integers(20, 60, RECORDS)]
    write_items(eval_dir, "heldout", [(f"{k}:r", {"loss": ((2.0 - 0.3 * (arm == "mosaic") + rng.normal(0, 0.05)) * t, float(t))})
                                      for k, t in enumerate(tokens)])
    write_json(eval_dir / "metrics.json", {"cost/eval_device_seconds": 30.0 + seed})
    steps = {"baseline": 30, "mosaic": 10, "baseline_equal_tokens": 40}[arm]
    loop, stage = steps * (6.0 + seed), steps * (6.0 + seed) + 20.0  # 20 s of loading and saving
    write_json(train_dir / "metrics.json", {
        "train/steps": steps, "train/sequences": steps * 8, "tokens/real": steps * 1000.0, "tokens/padded": steps * 1200.0,
        "cost/stage_seconds": stage, "cost/wall_seconds": stage, "cost/loop_seconds": loop,
        "cost/device_hours": stage / 3600, "cost/usd": stage / 3600 * 2.0, "cost/some_new_key": 1.0})
    (train_dir / "config.yaml").write_text(yaml.safe_dump({"max_length": 512, "batching": "dynamic"}))
    return CellDirs(train_dir, eval_dir)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(0)
    cells = {(arm, seed): write_cell(root, arm, seed, rng) for seed in SEEDS for arm in ARMS}
    judged = {}
    for seed in SEEDS:
        folder = root / f"seed{seed}" / "judge" / "mosaic"
        outcomes = ["win"] * 12 + ["tie"] * 4 + ["lose"] * 4 + ["error"] * seed
        write_jsonl(folder / "pairwise" / "vicuna.jsonl", ({"id": k, "outcome": o} for k, o in enumerate(outcomes)))
        write_jsonl(folder / "pairwise" / "vicuna.verdicts.jsonl", [{"id": 0, "junk": True}])  # a journal, not verdicts
        judged[seed] = folder
    result = analyze_study(cells, "baseline", "mosaic", root / "report", judged=judged, n_boot=500,
                           extra_arms=["baseline_equal_tokens"])
    return root, cells, judged, result


def headline_rows(report: str) -> dict[str, list[str]]:
    section = report.split("## Headline", 1)[1].split("\n\n")[1]
    rows = [line.strip("|").split(" | ") for line in section.splitlines()[2:]]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows}


def test_headline_table_comes_first_and_every_number_has_n_and_ci(study):
    root, _, _, result = study
    report = result.report.read_text(encoding="utf-8")
    assert report.index("## Headline") < report.index("forest.png") < report.index("## Cost") < report.index("## Breakdowns")
    rows = headline_rows(report)
    # No mask probe was written: a metric evaluated nowhere has no row (never a row of zeros).
    assert list(rows) == [*(m for m in HEADLINE if m != "mosaic_following/mask"), "pairwise/win_rate"]
    for metric, cells in rows.items():
        assert re.fullmatch(r"3 × \d+ .+", cells[1]), (metric, cells[1])  # n: seeds x items
        assert re.fullmatch(r"\[-?[\d.e+-]+, -?[\d.e+-]+\]", cells[5]), (metric, cells[5])  # the CI
        assert cells[6], metric
    assert rows["ifeval/prompt_strict"][1] == f"3 × {PROMPTS} prompts"
    assert rows["ifeval/instruction_strict"][1].startswith(f"3 × {PROMPTS} prompts (≈")
    assert rows["heldout/loss"][1].startswith(f"3 × {RECORDS} records (≈")
    assert (root / "report" / "plots" / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_holds_the_numbers_the_report_prints(study):
    _, _, _, result = study
    summary = json.loads(result.summary.read_text(encoding="utf-8"))
    rows = headline_rows(result.report.read_text(encoding="utf-8"))
    assert summary["headline"] == json.loads(json.dumps(result.headline))
    for entry in summary["headline"]:
        cells = rows[entry["metric"]]
        assert cells[4].startswith(num(entry["difference"])) and cells[5] == interval(entry["ci"])
        assert entry["verdict"] == cells[6] and entry["seeds"] == 3 and entry["n_boot"] == 500
        mosaic = entry["mean"]["mosaic"]
        assert cells[3] == f"{num(mosaic)} ± {num(entry['sd']['mosaic'])}"


def test_verdicts_follow_the_data(study):
    _, _, _, result = study
    by_metric = {r["metric"]: r for r in result.headline}
    assert by_metric["ifeval/prompt_strict"]["difference"] == 0.0
    assert by_metric["ifeval/prompt_strict"]["verdict"].startswith("no detectable difference (CI covers 0); minimum detectable effect at this n ≈ ")
    assert by_metric["mosaic_following/format"]["verdict"] == "Mosaic-IT better"
    assert by_metric["heldout/loss"]["verdict"] == "Mosaic-IT better"  # lower loss
    assert by_metric["heldout/loss"]["difference"] == pytest.approx(-0.3, abs=0.02)
    win = by_metric["pairwise/win_rate"]
    assert win["mean"]["mosaic"] == pytest.approx((12 + 0.5 * 4) / 20)  # errors left out, ties half
    assert win["items"] == 20 and win["verdict"] == "Mosaic-IT better"


def test_few_item_rows_are_marked_not_hidden(study):
    _, _, _, result = study
    summary = json.loads(result.summary.read_text(encoding="utf-8"))
    rules = {(r["rule"], r["score"]): r for r in summary["breakdowns"]["mosaic_following"]}
    assert rules[("order/REVERSE", "kendall_tau")]["few_items"] and rules[("order/REVERSE", "kendall_tau")]["items"] == 3
    assert not rules[("format", "format")]["few_items"]
    report = result.report.read_text(encoding="utf-8")
    reverse = next(line for line in report.splitlines() if line.startswith("| order/REVERSE | kendall_tau |"))
    assert "3 × 3 probes" in reverse and reverse.endswith("few items (< 10 per seed) |")
    assert [r["instruction"] for r in summary["breakdowns"]["ifeval"]] == ["punctuation:no_comma"]
    assert (result.tables[0].parent / "breakdown_mosaic_following.csv").is_file()


def test_cost_rows_with_pad_to_max_and_paired_ratios(study):
    _, _, _, result = study
    summary = json.loads(result.summary.read_text(encoding="utf-8"))
    cost = {r["key"]: r for r in summary["cost"]}
    assert cost["pad_to_max/tokens"]["arms"]["mosaic"]["per_seed"] == [10 * 8 * 512.0] * 3
    # Only the loop grows with the computed tokens; loading and saving stay 20 s.
    assert cost["pad_to_max/device_hours"]["arms"]["baseline"]["per_seed"][0] == pytest.approx(
        (20 + 30 * 6.0 * (30 * 8 * 512) / (30 * 1200)) / 3600)
    hours = cost["cost/device_hours"]
    assert hours["ratio_to_baseline"]["mosaic"]["per_seed"] == pytest.approx([80 / 200, 90 / 230, 100 / 260])
    assert "cost/wall_seconds" not in cost and cost["cost/loop_seconds"]["arms"]["mosaic"]["per_seed"] == [60.0, 70.0, 80.0]
    low, high = hours["arms"]["baseline"]["ci"]
    assert low < hours["arms"]["baseline"]["mean"] < high
    assert cost["cost/eval_device_seconds"]["arms"]["mosaic"]["per_seed"] == [30.0, 31.0, 32.0]
    assert "| device-hours under pad_to_max (estimate) |" in result.report.read_text(encoding="utf-8")


def test_extra_arm_is_compared_to_the_baseline_and_reruns_are_identical(study):
    root, cells, judged, result = study
    summary = json.loads(result.summary.read_text(encoding="utf-8"))
    assert {r["candidate"] for r in summary["extra_arms"]} == {"baseline_equal_tokens"}
    assert "## Other arms vs baseline" in result.report.read_text(encoding="utf-8")
    again = analyze_study(cells, "baseline", "mosaic", root / "again", judged=judged, n_boot=500,
                          extra_arms=["baseline_equal_tokens"])
    assert again.summary.read_text(encoding="utf-8") == result.summary.read_text(encoding="utf-8")


def test_a_missing_cell_is_named(study):
    root, cells, _, _ = study
    partial = {k: v for k, v in cells.items() if k != ("mosaic", 1)}
    partial[("baseline_equal_tokens", 1)] = cells[("baseline_equal_tokens", 1)]
    with pytest.raises(MosaicItError, match=r"mosaic@seed1"):
        analyze_study(partial, "baseline", "mosaic", root / "partial", n_boot=100)


def test_a_damaged_item_file_is_one_line_naming_file_and_line(study, tmp_path):
    from mosaic_it.errors import InputFileError
    from mosaic_it.evaluate.items import item_scores

    _, cells, _, _ = study
    items = tmp_path / "items"
    items.mkdir()
    lines = (cells[("mosaic", 0)].eval_dir / "items" / "heldout.jsonl").read_text(encoding="utf-8").splitlines()
    (items / "heldout.jsonl").write_text("\n".join([lines[0], '{"id": "x", "scores": {"loss": [1, "two"]}}']) + "\n")
    with pytest.raises(InputFileError) as caught:
        item_scores(tmp_path)
    assert str(caught.value).startswith(f"{items / 'heldout.jsonl'}:2: ") and "\n" not in str(caught.value)


def test_a_cell_without_item_scores_is_warned_about(study, tmp_path):
    root, cells, _, _ = study
    bare = dict(cells)
    bare[("baseline", 2)] = CellDirs(cells[("baseline", 2)].train_dir, tmp_path / "old-evaluate")
    summary = json.loads(analyze_study(bare, "baseline", "mosaic", tmp_path / "out", n_boot=100).summary.read_text())
    assert summary["warnings"][0].startswith("baseline@seed2: no per-item scores")


def test_headline_rows_carry_flat_interval_bounds_for_mlflow(study):
    _, _, _, result = study
    for entry in result.headline:
        assert (entry["ci_low"], entry["ci_high"]) == tuple(entry["ci"])

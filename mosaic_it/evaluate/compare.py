"""`run_compare`: baseline and candidate side by side on every metric and on cost, as markdown + PNG.

Evaluation metrics come from <evaluate_dir>/<arm>/metrics.json, cost metrics from
<train_dir>/<arm>/metrics.json (whatever keys are there). With a judge configured, every pairwise
test set answered by both arms is judged with the candidate as answer A.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mosaic_it.config.evaluate import CompareConfig, JudgeConfig
from mosaic_it.atomic import write_text
from mosaic_it.config.tracking import TrackingConfig
from mosaic_it.errors import InputFileError, MosaicItError
from mosaic_it.evaluate.judge import JudgeClient, judge_all, tally
from mosaic_it.evaluate.pairwise import generations_path
from mosaic_it.evaluate.plots import bar_chart, write_csv
from mosaic_it.evaluate.report import render_report, single_run_summary
from mosaic_it.study.analyze import write_summary
from mosaic_it.lineage import read_lineage, train_lineage_params
from mosaic_it.jsonl import iter_jsonl_lines, write_json, write_jsonl
from mosaic_it.paths import refuse_overwriting_inputs
from mosaic_it.mlmodel.promote import promote_winner

# Groups in report order; keys of other groups follow alphabetically.
GROUP_ORDER = ("heldout", "mosaic_following", "ifeval", "pairwise", "cost", "tokens", "throughput", "train")
HEADLINE = ("mosaic_following/format", "mosaic_following/count", "mosaic_following/order_kendall_tau",
            "mosaic_following/mask", "ifeval/prompt_strict", "ifeval/prompt_loose",
            "ifeval/instruction_strict", "ifeval/instruction_loose")
COST_GROUPS = ("cost", "tokens", "throughput", "memory")
NO_DELTA_GROUPS = ("params", "tokens", "data")
COUNT_NAMES = {"n", "steps", "samples", "probes", "prompts", "instructions", "records", "tokens", "truncated",
               "dropped", "errors", "order_ranked"}


@dataclass
class ComparePaths:
    report: Path
    metrics: Path
    table: Path
    plots: list[Path] = field(default_factory=list)


def read_metrics(path: Path, required: bool) -> dict[str, float]:
    if not path.exists():
        if required:
            raise InputFileError(path, "metrics not found (run `mosaic-it evaluate` for this arm first)")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc.msg})", exc.lineno) from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise InputFileError(path, "not a UTF-8 JSON file") from None
    if not isinstance(data, dict):
        raise InputFileError(path, "expected a JSON object of metrics")
    return {k: float(v) for k, v in _flat(data).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _flat(tree: dict, prefix: str = "") -> dict:
    out: dict = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def has_delta(key: str) -> bool:
    """Whether candidate minus baseline of this metric is a result: not for counts, durations or
    model sizes (those are in the table, side by side)."""
    group, leaf = key.split("/")[0], key.rsplit("/", 1)[-1]
    return group not in NO_DELTA_GROUPS and leaf not in COUNT_NAMES and not leaf.endswith("seconds")


def metric_order(key: str) -> tuple[int, str]:
    group = key.split("/")[0]
    return (GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), key)


def judge_arms(cfg: CompareConfig, judge: JudgeConfig, base_dir: Path, cand_dir: Path, out_dir: Path) -> dict[str, dict[str, float]]:
    """Win/tie/lose of the candidate against the baseline on each test set both arms answered.

    Finished verdicts are journaled in <out_dir>/pairwise/<set>.verdicts.jsonl as they arrive, and
    a rerun asks only what is missing. Pairs that still fail count as errors; above
    `judge.max_error_fraction` of a set's pairs, compare fails once every set has been tried.
    """
    client = JudgeClient(judge)
    results, too_many = {}, []
    try:
        for cand_file in sorted((cand_dir / "generations" / "pairwise").glob("*.jsonl")):
            name = cand_file.stem
            base_file = generations_path(base_dir, name)
            if not base_file.exists():
                continue
            baseline = {row["id"]: row for row in read_generations(base_file)}
            pairs = [(row, baseline[row["id"]]) for row in read_generations(cand_file) if row["id"] in baseline]
            journal = out_dir / "pairwise" / f"{name}.verdicts.jsonl"
            verdicts = judge_all(client, [c["prompt"] for c, _ in pairs], [c["response"] for c, _ in pairs],
                                 [b["response"] for _, b in pairs], desc=f"judge {name}", journal=journal,
                                 ids=[c["id"] for c, _ in pairs])
            write_jsonl(out_dir / "pairwise" / f"{name}.jsonl", (
                {"id": c["id"], "prompt": c["prompt"], cfg.candidate: c["response"], cfg.baseline: b["response"], **v}
                for (c, b), v in zip(pairs, verdicts)
            ))
            results[name] = tally(verdicts)
            failures = [v["failure"] for v in verdicts if "failure" in v]
            if pairs and len(failures) / len(pairs) > judge.max_error_fraction:
                too_many.append(f"{name} {len(failures)}/{len(pairs)} ({failures[0]})")
    finally:
        client.close()
    if too_many:
        raise MosaicItError(f"judging failed on more than compare.judge.max_error_fraction={judge.max_error_fraction:g} "
                            f"of the pairs: {'; '.join(too_many)}; finished verdicts are kept and a rerun resumes")
    return results


def read_generations(path: Path) -> list[dict]:
    """A pairwise generations file, each row checked for the fields judging needs."""
    rows = []
    for line, row in iter_jsonl_lines(path):
        if not (isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str)
                and isinstance(row.get("id"), (str, int)) and not isinstance(row.get("id"), bool)):
            raise InputFileError(path, "a generation needs a string prompt and response and a string or integer id", line)
        rows.append(row)
    return rows


def _plots(cfg: CompareConfig, base: dict, cand: dict, pairwise: dict, out_dir: Path) -> list[Path]:
    plots = []
    shown = [k for k in HEADLINE if k in base or k in cand]
    if shown:
        plots.append(bar_chart(out_dir / "plots" / "metrics.png", shown,
                               {cfg.baseline: [base.get(k) for k in shown], cfg.candidate: [cand.get(k) for k in shown]},
                               "Evaluation: baseline vs candidate"))
    costs = [k for k in sorted(set(base) | set(cand)) if k.split("/")[0] in COST_GROUPS]
    if costs:
        # Cost metrics have unlike units, so each is shown relative to the baseline.
        ratios = [cand[k] / base[k] if base.get(k) and k in cand else None for k in costs]
        plots.append(bar_chart(out_dir / "plots" / "cost.png", costs, {f"{cfg.candidate} / {cfg.baseline}": ratios},
                               "Cost relative to the baseline (1 = same)", "ratio"))
    if pairwise:
        names = sorted(pairwise)
        plots.append(bar_chart(out_dir / "plots" / "pairwise.png", names,
                               {o: [pairwise[n][o] for n in names] for o in ("win", "tie", "lose")},
                               f"{cfg.candidate} vs {cfg.baseline}, judged in both orders", "prompts"))
    return plots


def run_compare(cfg: CompareConfig, tracking: TrackingConfig | None = None) -> ComparePaths:
    from mosaic_it import tracking as mlflow_tracking

    eval_dir, train_dir, out_dir = Path(cfg.evaluate_dir), Path(cfg.train_dir), Path(cfg.output_dir)
    arms = (cfg.baseline, cfg.candidate)
    refuse_overwriting_inputs(
        "compare", [d / a / "metrics.json" for d in (eval_dir, train_dir) for a in arms] + [eval_dir / a / "generations" for a in arms],
        [out_dir / n for n in ("report.md", "metrics.json", "comparison.csv")], [out_dir / "plots", out_dir / "pairwise"])
    base = read_metrics(eval_dir / cfg.baseline / "metrics.json", True)
    cand = read_metrics(eval_dir / cfg.candidate / "metrics.json", True)
    base.update(read_metrics(train_dir / cfg.baseline / "metrics.json", False))
    cand.update(read_metrics(train_dir / cfg.candidate / "metrics.json", False))
    tracking = tracking or TrackingConfig(enabled=False)
    trained = {arm: read_lineage(train_dir / arm) for arm in (cfg.baseline, cfg.candidate)}
    params = {"compare": cfg.model_dump(), "consumed": {arm: train_lineage_params(r) for arm, r in trained.items()}}
    tags = {f"mosaic_it.train_run_id.{arm}": str(r["run_id"]) for arm, r in trained.items() if r.get("run_id")}
    with mlflow_tracking.stage_run("compare", tracking, params=params, tags=tags) as run:
        pairwise = {}
        if cfg.judge.url:
            pairwise = judge_arms(cfg, cfg.judge, eval_dir / cfg.baseline, eval_dir / cfg.candidate, out_dir)
        keys = sorted(set(base) | set(cand), key=metric_order)
        rows = [{"metric": k, cfg.baseline: base.get(k), cfg.candidate: cand.get(k),
                 "delta": cand[k] - base[k] if k in base and k in cand else None} for k in keys]
        table = write_csv(out_dir / "comparison.csv", rows)
        summary = {f"delta/{r['metric']}": r["delta"] for r in rows if r["delta"] is not None and has_delta(r["metric"])}
        summary.update({f"pairwise/{s}/{k}": v for s, t in pairwise.items() for k, v in t.items()})
        metrics_path = out_dir / "metrics.json"
        write_json(metrics_path, summary)
        stats = single_run_summary(cfg, out_dir if pairwise else None)
        stats_path, stats_tables, forest = write_summary(stats, out_dir, f"{cfg.candidate} vs {cfg.baseline}: one run each")
        plots = forest + _plots(cfg, base, cand, pairwise, out_dir)
        report = write_text(out_dir / "report.md", render_report(cfg, rows, pairwise, plots, out_dir, stats))
        if run is not None:
            mlflow_tracking.log_metrics(summary)
            for path in (report, metrics_path, table, stats_path, *stats_tables):
                mlflow_tracking.log_artifacts(path)
            mlflow_tracking.log_artifacts(out_dir / "plots", "plots")
            if pairwise:
                mlflow_tracking.log_artifacts(out_dir / "pairwise", "pairwise")
            promote_winner(cfg, tracking, base, cand)
    return ComparePaths(report, metrics_path, table, plots)

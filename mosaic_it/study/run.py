"""The study's steps, each resumable: records, augment per seed, train and evaluate per cell, judge,
report. `run_study` runs them in order for the CLI; the Prefect flow and the DVC stages call the
same steps one by one. A finished step is skipped while its marker still matches (markers.py)."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic_it import atomic
from mosaic_it.config import Params
from mosaic_it.errors import InputFileError, MosaicItError
from mosaic_it.hashing import hash_paths, hash_text
from mosaic_it.progress import progress
from mosaic_it.study import configs, markers
from mosaic_it.study.cells import CellDirs
from mosaic_it.study.tracking import cell_tags


@dataclass(frozen=True)
class StepResult:
    step: str
    seed: int | None
    arm: str | None
    skipped: bool
    seconds: float  # of the run that produced the outputs (0 for a step skipped before any record)


def prepare_records(params: Params) -> StepResult:
    """The first `study.max_records` training records, copied byte for byte: every arm's source."""
    source, target = Path(params.study.records), configs.layout(params).records
    if not source.is_file():
        raise InputFileError(source, "study records not found (run `mosaic-it validate` and `split` first?)")
    started = time.perf_counter()
    lines = [line for line in source.read_bytes().splitlines(keepends=True) if line.strip()]
    if params.study.max_records is not None:
        lines = lines[: params.study.max_records]
    if not lines:
        raise InputFileError(source, "no records to study")
    content = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    unchanged = target.is_file() and target.read_bytes() == content
    if not unchanged:
        atomic.write_bytes(target, content)
    return StepResult("records", None, None, unchanged, time.perf_counter() - started)


def resumable(params: Params, step: str, seed: int, arm: str | None, fingerprint: str, outputs: list[Path],
              work: Callable[[], dict[str, Any]]) -> StepResult:
    """Run `work` unless this step's marker still matches; record its time and what it reports."""
    marker = configs.layout(params).marker(seed, step, arm or "")
    if markers.is_done(marker, fingerprint, outputs):
        return StepResult(step, seed, arm, True, markers.read_info(marker).get("seconds", 0.0))
    started = time.perf_counter()
    info = work()
    seconds = time.perf_counter() - started
    markers.mark_done(marker, fingerprint, outputs, {"seconds": seconds, **info})
    return StepResult(step, seed, arm, False, seconds)


def augment_seed(params: Params, seed: int) -> StepResult:
    """Mosaic-IT samples from the study records with this seed (`study.mosaic_epochs` epochs)."""
    from mosaic_it.mosaic.augment import augment_with_stats

    cfg = configs.augment_config(params, seed)

    def work() -> dict[str, Any]:
        report, _ = augment_with_stats(cfg)
        if report.samples == 0:
            raise MosaicItError(f"augment wrote no sample for seed {seed} (records too long for augment.max_tokens?)")
        return {"samples": report.samples}

    fingerprint = hash_text(configs.settings(cfg) + hash_paths([cfg.input]))
    return resumable(params, "augment", seed, None, fingerprint, [Path(cfg.output)], work)


def arm_epochs(params: Params, seed: int, arm: str) -> float:
    """Passes over the arm's data: the paper's protocol, or for `baseline_equal_tokens` as many
    passes over the records as it takes to see the mosaic arm's real tokens."""
    if arm == "baseline":
        return params.study.baseline_epochs
    if arm == "mosaic":
        return 1.0
    return equal_token_epochs(params, seed)


def equal_token_epochs(params: Params, seed: int) -> float:
    from mosaic_it.models.tokenizer import load_tokenizer
    from mosaic_it.train.data import encode_all, load_records

    train = params.train
    tokenizer = load_tokenizer(train.model, train.trust_remote_code)
    where = configs.layout(params)

    def real_tokens(path: Path) -> int:
        examples, _ = encode_all(load_records(path), tokenizer, train.prompt_format, train.max_length)
        return sum(len(e) for e in examples)

    return round(real_tokens(where.mosaic(seed)) / real_tokens(where.records), 6)


def train_cell(params: Params, seed: int, arm: str) -> StepResult:
    from mosaic_it.train.run import run_training

    cfg = configs.train_config(params, seed, arm, arm_epochs(params, seed, arm))
    cell = configs.cell_dirs(params, seed, arm)

    def work() -> dict[str, Any]:
        with cell_tags(seed, arm):
            result = run_training(cfg, params.tracking, params.cost)
        return {"epochs": cfg.epochs, "run_id": result.run_id}

    fingerprint = hash_text(configs.learned_settings(cfg) + hash_paths([cfg.data]))
    return resumable(params, "train", seed, arm, fingerprint, [cell.train_dir / "model", cell.train_dir / "metrics.json"],
                     work)


def evaluate_cell(params: Params, seed: int, arm: str) -> StepResult:
    from mosaic_it.evaluate.run import run_evaluation

    cfg = configs.evaluate_config(params, seed, arm)
    cell = configs.cell_dirs(params, seed, arm)

    def work() -> dict[str, Any]:
        with cell_tags(seed, arm):
            run_evaluation(cfg, params.tracking, params.cost)
        return {}

    inputs = [cell.train_dir / "model", Path(cfg.heldout), Path(cfg.ifeval_path)]
    fingerprint = hash_text(configs.settings(cfg) + hash_paths(inputs))
    return resumable(params, "evaluate", seed, arm, fingerprint, [cell.eval_dir / "metrics.json"], work)


def run_cell(params: Params, seed: int, arm: str) -> list[StepResult]:
    return [train_cell(params, seed, arm), evaluate_cell(params, seed, arm)]


def judge_seed(params: Params, seed: int) -> list[StepResult]:
    """Each non-baseline arm against the baseline on the pairwise sets, when a judge is configured."""
    judge = params.compare.judge
    if not judge.url:
        return []
    from mosaic_it.evaluate.compare import judge_arms  # scipy and the report modules: only when judging

    results = []
    baseline = configs.cell_dirs(params, seed, "baseline").eval_dir
    for arm in params.study.arms:
        if arm == "baseline":
            continue
        started = time.perf_counter()
        compare = params.compare.model_copy(update={"baseline": "baseline", "candidate": arm})
        with cell_tags(seed, arm):
            judge_arms(compare, judge, baseline, configs.cell_dirs(params, seed, arm).eval_dir,
                       configs.layout(params).judge_dir(seed, arm))
        results.append(StepResult("judge", seed, arm, False, time.perf_counter() - started))
    return results


def cells(params: Params) -> dict[tuple[str, int], CellDirs]:
    return {(arm, seed): configs.cell_dirs(params, seed, arm)
            for seed in params.study.seeds for arm in params.study.arms}


def evaluated(dirs: CellDirs) -> bool:
    return (dirs.eval_dir / "metrics.json").is_file()


def missing_cells(params: Params) -> list[tuple[str, int]]:
    return [key for key, dirs in cells(params).items() if not evaluated(dirs)]


def report(params: Params) -> Any:
    """The study report over every cell (all must be evaluated)."""
    from mosaic_it.study.analyze import analyze_study

    missing = missing_cells(params)
    if missing:
        shown = ", ".join(f"{arm}@seed{seed}" for arm, seed in missing)
        raise MosaicItError(f"cannot report: cell(s) not evaluated yet: {shown} (run `mosaic-it study`)")
    study = params.study
    where = configs.layout(params)
    judged = ({seed: where.judge_dir(seed, "mosaic") for seed in study.seeds}
              if params.compare.judge.url else None)
    extra = [arm for arm in study.arms if arm not in ("baseline", "mosaic")]
    out_dir = Path(study.report_dir) if study.report_dir else where.root / "report"
    return analyze_study(cells(params), "baseline", "mosaic", out_dir, judged=judged, n_boot=study.n_boot,
                         confidence=study.confidence, rng_seed=0, extra_arms=extra)


def timings(params: Params) -> list[dict[str, Any]]:
    """Wall seconds of every finished step, read back from the markers (for the study docs)."""
    where = configs.layout(params)
    rows = []
    for seed in params.study.seeds:
        for path in sorted((where.seed_dir(seed) / "done").glob("*.json")):
            info = markers.read_info(path)
            rows.append({"seed": seed, "step": path.stem, "seconds": round(float(info.get("seconds", 0.0)), 1)})
    return rows


def run_study(params: Params, seeds: Sequence[int] | None = None, arms: Sequence[str] | None = None,
              with_report: bool = True) -> tuple[list[StepResult], Any]:
    """Every step in order; only the named seeds/arms when given (a DVC cell, a partial rerun)."""
    from mosaic_it.study.tracking import study_run

    chosen_seeds = list(seeds) if seeds else params.study.seeds
    chosen_arms = list(arms) if arms else params.study.arms
    for seed in chosen_seeds:
        if seed not in params.study.seeds:
            raise MosaicItError(f"seed {seed} is not in study.seeds {params.study.seeds}")
    for arm in chosen_arms:
        if arm not in params.study.arms:
            raise MosaicItError(f"arm {arm!r} is not in study.arms {params.study.arms}")
    steps: list[StepResult] = []
    summary = None
    with study_run(params) as parent, progress(len(chosen_seeds) * len(chosen_arms), "study cells", "cell") as bar:
        steps.append(prepare_records(params))
        for seed in chosen_seeds:
            if any(arm != "baseline" for arm in chosen_arms):
                steps.append(augment_seed(params, seed))
            for arm in chosen_arms:
                steps.extend(run_cell(params, seed, arm))
                bar.update(1)
            if all(evaluated(configs.cell_dirs(params, seed, arm)) for arm in params.study.arms):
                steps.extend(judge_seed(params, seed))
        if with_report:
            summary = report(params)
            log_report(parent, summary)
    return steps, summary


def log_report(parent: Any, summary: Any) -> None:
    from mosaic_it import tracking as track

    if parent is None:
        return
    headline = {}
    for row in getattr(summary, "headline", []):
        name = row.get("metric")
        for key in ("difference", "ci_low", "ci_high"):
            if name and isinstance(row.get(key), (int, float)):
                headline[f"study/{name}/{key}"] = float(row[key])
    if headline:
        track.log_metrics(headline)
    for path in (summary.report, summary.summary, *summary.plots):
        track.log_artifacts(path, "study" if Path(path).parent.name != "plots" else "study/plots")


"""Per-item scores: what every eval measured on each evaluation item, so arms can be paired per item.

Each eval writes <arm dir>/items/<eval>.jsonl, one row per item:
    {"id": "<stable item id>", "scores": {"<metric>": [numerator, denominator], ...}}
A metric's value over any set of items is sum(numerators) / sum(denominators): per-prompt
metrics have denominator 1, instruction-level IFEval counts instructions, held-out loss counts
response tokens. A metric that is undefined on an item (no order rule, no readable answers) is
absent from that item's scores. The eval's metrics.json values are computed from these very
rows by `aggregate`, so the two always agree exactly.

Item ids depend only on the evaluation item (held-out record position and content, IFEval key,
probe rule, index and prompt), never on the arm or the seed, so the same item pairs up everywhere.
"""
from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import iter_jsonl, write_jsonl

Ratio = tuple[float, float]
ItemRow = tuple[str, Mapping[str, Ratio]]  # (item id, metric -> (numerator, denominator))
FOLDER = "items"


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def ratio(pairs: Iterable[Ratio]) -> float | None:
    """sum(num) / sum(den), summed exactly (math.fsum) so that the order of items never matters."""
    nums, dens = [], []
    for num, den in pairs:
        nums.append(num)
        dens.append(den)
    total = math.fsum(dens)
    return math.fsum(nums) / total if total > 0 else None


def by_metric(rows: Iterable[ItemRow]) -> dict[str, dict[str, Ratio]]:
    table: dict[str, dict[str, Ratio]] = defaultdict(dict)
    for item, scores in rows:
        for metric, (num, den) in scores.items():
            table[metric][item] = (float(num), float(den))
    return dict(table)


def aggregate(rows: Iterable[ItemRow]) -> dict[str, float]:
    """Every metric's value over all items; a metric defined on no item is left out."""
    values = {metric: ratio(items.values()) for metric, items in by_metric(rows).items()}
    return {metric: value for metric, value in values.items() if value is not None}


def write_items(eval_dir: Path, eval_name: str, rows: Iterable[ItemRow]) -> Path:
    path = eval_dir / FOLDER / f"{eval_name}.jsonl"
    write_jsonl(path, ({"id": item, "scores": {m: [n, d] for m, (n, d) in scores.items()}} for item, scores in rows))
    return path


def read_items(path: Path) -> list[ItemRow]:
    rows = []
    for line, row in enumerate(iter_jsonl(path), start=1):  # items files have no blank lines
        scores = row.get("scores")
        if not isinstance(row.get("id"), str) or not isinstance(scores, dict) or not all(
                isinstance(v, list) and len(v) == 2 and all(_number(x) for x in v) for v in scores.values()):
            raise InputFileError(path, 'an item row needs a string "id" and "scores": {metric: [num, den]}', line)
        rows.append((row["id"], {m: (float(v[0]), float(v[1])) for m, v in scores.items()}))
    return rows


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def item_scores(eval_dir: Path) -> dict[str, dict[str, Ratio]]:
    """"<eval>/<metric>" -> {item id -> (numerator, denominator)} for every eval run in `eval_dir`."""
    scores: dict[str, dict[str, Ratio]] = {}
    for path in sorted((Path(eval_dir) / FOLDER).glob("*.jsonl")):
        for metric, items in by_metric(read_items(path)).items():
            scores[f"{path.stem}/{metric}"] = items
    return scores


OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "lose": 0.0}  # "error" verdicts are left out and counted


def verdict_files(judged_dir: Path) -> list[Path]:
    """The per-test-set verdict files `judge_arms` wrote (in <dir>/pairwise/, or <dir> itself)."""
    folder = Path(judged_dir) / "pairwise" if (Path(judged_dir) / "pairwise").is_dir() else Path(judged_dir)
    return [p for p in sorted(folder.glob("*.jsonl")) if not p.name.endswith(".verdicts.jsonl")]


def verdict_scores(judged_dir: Path) -> tuple[dict[str, dict[str, Ratio]], dict[str, int]]:
    """Candidate (answer A) outcomes as items, win 1 / tie 0.5 / lose 0: "pairwise/win_rate" over
    every test set (item "<set>/<id>") and "pairwise/<set>/win_rate"; plus counts per outcome."""
    scores: dict[str, dict[str, Ratio]] = defaultdict(dict)
    counts = {"win": 0, "tie": 0, "lose": 0, "error": 0}
    for path in verdict_files(judged_dir):
        for line, row in enumerate(iter_jsonl(path), start=1):
            outcome = row.get("outcome")
            if outcome not in counts or not isinstance(row.get("id"), (str, int)):
                raise InputFileError(path, 'a verdict row needs an "id" and an "outcome" (win, tie, lose or error)', line)
            counts[outcome] += 1
            if outcome in OUTCOME_SCORE:
                value = (OUTCOME_SCORE[outcome], 1.0)
                scores["pairwise/win_rate"][f"{path.stem}/{row['id']}"] = value
                scores[f"pairwise/{path.stem}/win_rate"][str(row["id"])] = value
    return dict(scores), counts

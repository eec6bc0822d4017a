"""Pure scoring of one generation against the mosaic sample that prompted it.

Segmenting: with begin/end tags, an answer is the text inside a tag pair. Without tags but with
numbering, an answer starts at a number marker (the numbering template, whitespace-tolerant, at the
start of a line); a marker whose number was already seen is taken as a list inside an answer.
Without either, answers are separated by blank lines.

Matching (for order and mask): each segment is matched to one of the sample's instructions by
token-overlap F1 (lower-cased word tokens) against the reference text of that instruction; pairs
are assigned greedily from the most similar down, one segment per instruction, and a segment whose
best remaining similarity is below `min_similarity` stays unmatched.

Mask compliance: the right number of answers and none matched to a masked instruction.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Segment:
    number: int | None
    text: str


def marker_pattern(numbering: str) -> re.Pattern[str]:
    prefix, suffix = numbering.split("{i}")
    parts = [re.escape(prefix.strip()), r"(\d+)", re.escape(suffix.strip())]
    return re.compile(r"^[ \t]*" + r"\s*".join(p for p in parts if p), re.MULTILINE)


def tag_pattern(begin: str, end: str) -> re.Pattern[str]:
    return re.compile(re.escape(begin) + r"(.*?)" + re.escape(end), re.DOTALL)


def _first_markers(text: str, numbering: str) -> list[re.Match[str]]:
    seen: set[int] = set()
    markers = []
    for match in marker_pattern(numbering).finditer(text):
        number = int(match.group(1))
        if number not in seen:
            seen.add(number)
            markers.append(match)
    return markers


def split_segments(generation: str, fmt: Mapping[str, Any]) -> list[Segment]:
    numbering, begin, end = fmt.get("numbering"), fmt.get("begin_tag") or "", fmt.get("end_tag") or ""
    if begin and end:
        pairs = list(tag_pattern(begin, end).finditer(generation))
        numbers = answer_numbers(generation, fmt) if numbering else []
        return [
            Segment(numbers[k] if k < len(numbers) else None, pair.group(1).strip())
            for k, pair in enumerate(pairs)
        ]
    if numbering:
        markers = _first_markers(generation, numbering)
        ends = [m.start() for m in markers[1:]] + [len(generation)]
        return [
            Segment(int(m.group(1)), generation[m.end() : stop].strip()) for m, stop in zip(markers, ends)
        ]
    chunks = re.split(r"\n[ \t]*\n", generation)
    return [Segment(None, c.strip()) for c in chunks if c.strip()]


def answer_numbers(generation: str, fmt: Mapping[str, Any]) -> list[int]:
    """The numbers the generation gives its answers (markers inside tagged answers are ignored)."""
    numbering, begin, end = fmt.get("numbering"), fmt.get("begin_tag") or "", fmt.get("end_tag") or ""
    if not numbering:
        return []
    if begin and end:
        outside = tag_pattern(begin, end).sub("\n", generation)
        return [int(m.group(1)) for m in marker_pattern(numbering).finditer(outside)]
    return [int(m.group(1)) for m in _first_markers(generation, numbering)]


def expected_numbers(sample: Mapping[str, Any]) -> list[int]:
    meta = sample["mosaic"]
    return [meta["source_ids"].index(rid) + 1 for rid in meta["response_ids"]]


def format_compliance(generation: str, sample: Mapping[str, Any]) -> bool | None:
    """Tags and numbering exactly as asked; None when the sample asked for neither."""
    fmt, count = sample["mosaic"]["format"], len(sample["mosaic"]["response_ids"])
    checks = []
    begin, end = fmt.get("begin_tag") or "", fmt.get("end_tag") or ""
    if begin and end:
        pairs = len(tag_pattern(begin, end).findall(generation))
        checks.append(pairs == count and generation.count(begin) == count and generation.count(end) == count)
    if fmt.get("numbering"):
        checks.append(answer_numbers(generation, fmt) == expected_numbers(sample))
    return all(checks) if checks else None


def token_f1(a: str, b: str) -> float:
    left, right = Counter(WORD.findall(a.lower())), Counter(WORD.findall(b.lower()))
    common = sum((left & right).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(left.values()), common / sum(right.values())
    return 2 * precision * recall / (precision + recall)


def match_segments(
    segments: Sequence[Segment], references: Mapping[int, str], min_similarity: float = 0.1
) -> list[int | None]:
    """For each segment, the id of the reference it answers (greedy one-to-one), or None."""
    scored = sorted(
        ((token_f1(seg.text, ref), k, rid) for k, seg in enumerate(segments) for rid, ref in references.items()),
        key=lambda item: -item[0],
    )
    assigned: list[int | None] = [None] * len(segments)
    used: set[int] = set()
    for similarity, k, rid in scored:
        if similarity < min_similarity:
            break
        if assigned[k] is None and rid not in used:
            assigned[k], _ = rid, used.add(rid)
    return assigned


def _common_ranks(expected: Sequence[int], observed: Sequence[int | None]) -> list[tuple[int, int]]:
    seen = [x for x in observed if x is not None]
    return [(expected.index(x), rank) for rank, x in enumerate(seen) if x in expected]


def kendall_tau(expected: Sequence[int], observed: Sequence[int | None]) -> float | None:
    """Rank agreement of the items present in both orders; None with fewer than two of them."""
    ranks = _common_ranks(expected, observed)
    if len(ranks) < 2:
        return None
    agree = disagree = 0
    for i in range(len(ranks)):
        for j in range(i + 1, len(ranks)):
            same = (ranks[i][0] - ranks[j][0]) * (ranks[i][1] - ranks[j][1])
            agree, disagree = agree + (same > 0), disagree + (same < 0)
    return (agree - disagree) / (agree + disagree)


def spearman_rho(expected: Sequence[int], observed: Sequence[int | None]) -> float | None:
    ranks = _common_ranks(expected, observed)
    n = len(ranks)
    if n < 2:
        return None
    by_expected = {pair: r for r, pair in enumerate(sorted(ranks))}  # re-rank to 0..n-1
    d2 = sum((by_expected[pair] - rank) ** 2 for rank, pair in enumerate(ranks))
    return 1 - 6 * d2 / (n * (n * n - 1))


def score_generation(
    sample: Mapping[str, Any], generation: str, references: Mapping[int, str], min_similarity: float = 0.1
) -> dict[str, Any]:
    """All per-sample scores; a score that does not apply to the sample is None."""
    meta = sample["mosaic"]
    segments = split_segments(generation, meta["format"])
    matched = match_segments(segments, {rid: references[rid] for rid in meta["source_ids"]}, min_similarity)
    expected = list(meta["response_ids"])
    masked = set(meta["source_ids"]) - set(expected)
    return {
        "format": format_compliance(generation, sample),
        "count": len(segments) == len(expected),
        "kendall_tau": kendall_tau(expected, matched),
        "spearman": spearman_rho(expected, matched),
        "order_exact": [x for x in matched if x is not None] == expected,
        # Silence would never answer a masked instruction, so mask compliance also needs the count.
        "mask": (not masked.intersection(matched) and len(segments) == len(expected))
        if meta["strategy"] == "mask" else None,
        "segments": len(segments),
        "matched": matched,
    }

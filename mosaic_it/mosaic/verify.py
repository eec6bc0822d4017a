"""Check every mosaic sample against its provenance and its rule.

A sample passes when: its source ids exist; re-rendering it from the source records with the
recorded layout, meta-instruction and rule reproduces it byte for byte; the rule holds (the answered
positions are what the rule defines, every masked answer is absent, order rules answer everything);
the meta-instruction announces the tags and the rule's numbers; and the exact token count, counted
here again from the whole sample, is within the budget and equals the one recorded (`mosaic.tokens`).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from mosaic_it.models.tokenizer import count_tokens, load_counting_tokenizer
from mosaic_it.mosaic.budget import TokenCounter
from mosaic_it.mosaic.engine import Plan, render
from mosaic_it.records import instruction_text
from mosaic_it.mosaic.layout import Layout
from mosaic_it.mosaic.rules import MASK_RULES, ORDER_RULES, applicable
from mosaic_it.mosaic.samples import read_samples
from mosaic_it.mosaic.sources import load_source_records

MAX_LISTED = 20
# Samples whose sides are tokenized in one batch: the Rust tokenizer spreads a batch over the cores.
CHECK_BATCH = 256


@dataclass
class VerifyReport:
    samples: int = 0
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0

    @property
    def ok(self) -> bool:
        return self.violation_count == 0


def _rule_problems(sample: dict, texts: Sequence[str], layout: Layout) -> Iterator[str]:
    meta = sample["mosaic"]
    strategy, rule_name, args = meta["strategy"], meta["rule"], meta.get("rule_args", {})
    positions = [meta["source_ids"].index(i) for i in meta["response_ids"]]
    if strategy == "format":
        if rule_name is not None:
            yield f"format sample names rule {rule_name}"
        if positions != list(range(len(texts))):
            yield "format sample does not answer every instruction in order"
        return
    registry = ORDER_RULES if strategy == "order" else MASK_RULES
    rule = registry.get(rule_name)
    if rule is None:
        yield f"unknown {strategy} rule {rule_name!r}"
        return
    if not applicable(rule, texts, layout.numbered):
        yield f"rule {rule_name} used where it does not apply (numbered={layout.numbered}, n={len(texts)})"
    if positions != rule.arrange(texts, args):
        yield f"answers {positions} do not follow {strategy} rule {rule_name}"
    if strategy == "order" and sorted(positions) != list(range(len(texts))):
        yield "order sample does not answer every instruction exactly once"
    if strategy == "mask":
        masked = len(texts) - len(positions)
        if not 1 <= masked <= len(texts) // 2:
            yield f"mask hides {masked} of {len(texts)} instructions (must be 1..half)"
    for name in ("sequence", "numbers"):
        if name in args and not _announces_numbers(meta["meta_instruction"], args[name]):
            yield f"meta-instruction does not announce {name} {args[name]}"
    if "k" in args and str(args["k"]) not in meta["meta_instruction"]:
        yield f"meta-instruction does not announce k={args['k']}"


def _announces_numbers(meta_instruction: str, numbers: Sequence[int]) -> bool:
    return [int(n) for n in re.findall(r"\d+", meta_instruction)][: len(numbers)] == list(numbers)


def _masked_absent(sample: dict, records: Sequence[dict], layout: Layout) -> Iterator[str]:
    meta = sample["mosaic"]
    kept = set(meta["response_ids"])

    def shown(position: int, record_id: int) -> str:
        return layout.number(position) + layout.begin_tag + records[record_id]["output"] + layout.end_tag

    answered = [shown(p, r) for p, r in enumerate(meta["source_ids"]) if r in kept]
    for position, record_id in enumerate(meta["source_ids"]):
        if record_id in kept:
            continue
        segment = shown(position, record_id)
        # Answered records may show the same text (equal responses and no numbering, or a response
        # that quotes it): only more occurrences than they account for are a leak.
        if sample["output"].count(segment) > sum(text.count(segment) for text in answered):
            yield f"masked response of record {record_id} appears in the output"


def check_sample(sample: dict, records: Sequence[dict], counter: TokenCounter, max_tokens: int | None = None,
                 tokens: int | None = None) -> list[str]:
    """Problems with one sample; `max_tokens` None checks the budget the sample records. `tokens`:
    the exact count of its instruction and output, each tokenized whole, where already counted."""
    meta = sample.get("mosaic") or {}
    ids = meta.get("source_ids", [])
    if not ids or any(not isinstance(i, int) or not 0 <= i < len(records) for i in ids):
        return [f"source_ids {ids} are not positions in the source file"]
    if not set(meta.get("response_ids", [])) <= set(ids):
        return ["response_ids are not a subset of source_ids"]
    if sample.get("count") != len(ids):
        return [f"count {sample.get('count')} differs from {len(ids)} source ids"]
    layout = Layout.from_dict(meta["format"])
    texts = [instruction_text(records[i]) for i in ids]
    problems = list(_rule_problems(sample, texts, layout))
    problems += _masked_absent(sample, records, layout)
    if layout.tagged and not (layout.begin_tag in meta["meta_instruction"] and layout.end_tag in meta["meta_instruction"]):
        problems.append("tags are used but not announced in the meta-instruction")
    positions = [ids.index(i) for i in meta["response_ids"]]
    plan = Plan(layout, meta["strategy"], None, meta.get("rule_args", {}),
                (meta["meta_instruction"],) if meta["meta_instruction"] else (), positions)
    instruction, output = render(plan, texts, [records[i]["output"] for i in ids])
    if "".join(instruction) != sample["instruction"]:
        problems.append("instruction differs from its re-rendering (numbering/layout not as recorded)")
    if "".join(output) != sample["output"]:
        problems.append("output differs from its re-rendering (numbering/tags not as announced)")
    budget = max_tokens if max_tokens is not None else meta.get("max_tokens")
    if tokens is None:
        tokens = counter.sample_tokens((sample["instruction"], sample["output"]))
    if budget is None:
        problems.append("no token budget recorded in the sample or given")
    elif tokens > budget:
        problems.append(f"{tokens} tokens exceed the budget of {budget}")
    if meta.get("tokens") != tokens:
        problems.append(f"recorded token count {meta.get('tokens')} differs from the exact count {tokens}")
    return problems


def verify_file(samples_path: str | Path, source_path: str | Path, tokenizer_name: str | None,
                max_tokens: int | None = None, show_progress: bool = True) -> VerifyReport:
    records = load_source_records(source_path)
    counter = TokenCounter(load_counting_tokenizer(tokenizer_name))
    report = VerifyReport()
    for line, sample, tokens in _counted(tqdm(read_samples(samples_path), desc="verify", disable=not show_progress),
                                         counter):
        report.samples += 1
        try:
            problems = check_sample(sample, records, counter, max_tokens, tokens)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            # read_samples checked the shape; what is left is arguments that do not fit their rule.
            problems = [f"rule_args {sample['mosaic']['rule_args']} do not fit rule {sample['mosaic']['rule']} ({exc!r})"]
        for problem in problems:
            report.violation_count += 1
            if len(report.violations) < MAX_LISTED:
                report.violations.append(f"{samples_path}:{line}: {problem}")
    return report


def _counted(samples: Iterable[tuple[int, dict]], counter: TokenCounter) -> Iterator[tuple[int, dict, int | None]]:
    """Each (line, sample) with its exact token count (None where its batch was refused): the sides
    of CHECK_BATCH samples at a time tokenized whole in one batch, the counts of
    TokenCounter.sample_tokens. The tokenizer lets go of the GIL, so a thread counts the next batch
    while this one is read and checked."""
    samples = iter(samples)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-count") as pool:
        batch = list(islice(samples, CHECK_BATCH))
        counting = pool.submit(_batch_tokens, counter, batch)
        while batch:
            following = list(islice(samples, CHECK_BATCH))
            counting_next = pool.submit(_batch_tokens, counter, following) if following else None
            yield from ((line, sample, tokens) for (line, sample), tokens in zip(batch, counting.result()))
            batch, counting = following, counting_next


def _batch_tokens(counter: TokenCounter, batch: list[tuple[int, dict]]) -> list[int] | list[None]:
    try:
        counts = count_tokens(counter.tokenizer, [side for _, sample in batch
                                                  for side in (sample["instruction"], sample["output"])])
    except (TypeError, ValueError):  # a side the tokenizer refuses: each sample is counted, and fails, alone
        return [None] * len(batch)
    return (counts[0::2] + counts[1::2]).tolist()

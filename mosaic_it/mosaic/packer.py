"""The packer: turns each epoch's shuffled records into samples under the token budget, one
decision (records, plan and exact count, or UNCOUNTED where a bound proved the fit) at a time.
Every random draw and budget check depends on the ones before, so this loop runs in one process;
it is compiled with mypyc where the install could (mosaic_it/mosaic/native.py)."""
from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mosaic_it.config.augment import AugmentConfig
from mosaic_it.progress import Progress, progress
from mosaic_it.records import instruction_text
from mosaic_it.mosaic import draws
from mosaic_it.mosaic.budget import UNCOUNTED, SampleCounter, TokenCounter
from mosaic_it.mosaic.counts import count_stream
from mosaic_it.mosaic.engine import draw_strategy, plan_sample, render, sample_record
from mosaic_it.mosaic.finisher import Planned
from mosaic_it.mosaic.layout import Layout, draw_layout
from mosaic_it.mosaic.record_sums import RecordSums

# Room kept for the meta-instruction while records are being packed; the real sample is then
# checked against the exact budget, dropping the last record if it does not fit.
META_RESERVE_TOKENS = 48


@dataclass
class AugmentReport:
    input: str
    output: str
    records: int
    samples: int = 0
    epochs: int = 0
    skipped_too_long: int = 0
    exact_budget_checks: int = 0
    seconds: float = 0.0
    per_strategy: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Packer:
    """Holds the per-record token counts and turns a shuffled id order into samples."""

    def __init__(self, records: Sequence[dict], cfg: AugmentConfig, counter: TokenCounter) -> None:
        self.cfg = cfg
        self.counter = counter
        self.texts = [instruction_text(r) for r in records]
        self.responses = [r["output"] for r in records]
        self.exact = SampleCounter(counter, self.texts + self.responses)
        # Leave counts that a bound shows to fit to finish(), where another process finishes.
        self.defer = False
        self.sums = RecordSums(self.exact, self.texts, self.responses)
        self.record_tokens = [a + b for a, b in zip(self.sums.text_tokens, self.sums.response_tokens)]
        self._numbers: dict[str | None, list[int]] = {}  # numbering -> the count of each number, twice

    def _candidates(self, order: Sequence[int], start: int, wanted: int, layout: Layout) -> list[int]:
        count = self.counter.count
        # What each item adds besides its record: its number twice, tags and separators.
        scaffold = (count(layout.begin_tag) + count(layout.end_tag) + count(layout.instruction_separator)
                    + count(layout.response_separator))
        numbers = self._numbers.setdefault(layout.numbering, [])  # twice each position's number
        chosen: list[int] = []
        used, budget, record_tokens = META_RESERVE_TOKENS, self.cfg.max_tokens, self.record_tokens
        for index in range(start, min(len(order), start + wanted)):  # no slice: max_length wants all
            record_id = order[index]
            position = len(chosen)
            if position == len(numbers):
                numbers.append(2 * count(layout.number(position)))
            cost = record_tokens[record_id] + scaffold + numbers[position]
            if chosen and used + cost > budget:
                break
            chosen.append(record_id)
            used += cost
        return chosen

    def build(self, ids: list[int], rng: random.Random, strategy: str, layout: Layout,
              epoch: int) -> Planned | None:
        """The decision for the longest prefix of `ids` that fits the budget (None if even one
        record does not fit): its plan and exact count, or UNCOUNTED where a bound proved the fit."""
        while ids:
            texts = [self.texts[i] for i in ids]
            plan = plan_sample(texts, rng, strategy, layout=layout)
            tokens, sides = self.sums.fit(ids, texts, plan, self.cfg.max_tokens, self.defer)
            if tokens is not None:
                return Planned(ids, plan, epoch, tokens, sides)
            ids = ids[:-1]
        return None

    def finish(self, planned: Planned) -> dict:
        """The sample a decision stands for, with its exact token count."""
        ids, plan, epoch, tokens, sides = planned
        if sides is None:
            sides = self.sides_of(planned)
        if tokens == UNCOUNTED:
            tokens = self.exact.count(sides)
        instruction, output = sides
        sample = sample_record(plan, "".join(instruction), "".join(output), ids, epoch)
        sample["mosaic"]["max_tokens"] = self.cfg.max_tokens  # so `verify` knows the budget
        sample["mosaic"]["tokens"] = tokens
        return sample

    def counted(self, planned: Planned) -> Planned:
        """The decision with its exact count, and its pieces where they had to be rendered."""
        if planned.tokens != UNCOUNTED:
            return planned
        sides = planned.sides or self.sides_of(planned)
        return planned._replace(tokens=self.exact.count(sides), sides=sides)

    def sides_of(self, planned: Planned) -> tuple[list[str], list[str]]:
        return render(planned.plan, [self.texts[i] for i in planned.ids], [self.responses[i] for i in planned.ids])

    def epoch(self, epoch: int, rng: random.Random, counts: Iterator[int], report: AugmentReport,
              progress: Progress | None = None) -> Iterator[Planned]:
        order = list(range(len(self.texts)))
        draws.shuffle(rng, order)
        start = 0
        while start < len(order):
            wanted = next(counts)
            strategy = draw_strategy(self.cfg.strategy, rng)
            layout = draw_layout(rng)
            built = self.build(self._candidates(order, start, wanted, layout), rng, strategy, layout, epoch)
            used = len(built.ids) if built else 1
            if built is None:
                report.skipped_too_long += 1
            else:
                kind = built.plan.strategy
                report.per_strategy[kind] = report.per_strategy.get(kind, 0) + 1
                yield built
            start += used
            if progress is not None:
                progress.update(used)

    def planned(self, report: AugmentReport, show_progress: bool = True) -> Iterator[Planned]:
        """Every epoch's decisions, in order."""
        cfg = self.cfg
        rng = random.Random(cfg.seed)
        counts = count_stream(cfg.wrap_mode, np.random.default_rng(cfg.seed), cfg.max_instructions)
        bar = progress(cfg.epochs * len(self.texts), "augment", unit="record") if show_progress else None
        for epoch in range(cfg.epochs):
            yield from self.epoch(epoch, rng, counts, report, bar)
            report.epochs = epoch + 1
        if bar is not None:
            bar.close()
        report.exact_budget_checks = self.exact.exact_checks

"""Samples finished in a forked child (mosaic_it.mosaic.finisher) are the bytes one process writes,
with the same stats; a child that fails leaves this process to write them all. The budget check
leaves a count to the finisher only where a bound proves the sample fits."""
from __future__ import annotations

import json
import os
import random

import pytest

from mosaic_it.config.augment import AugmentConfig
from mosaic_it.mosaic import finisher, forked
from mosaic_it.mosaic.packer import AugmentReport, Packer
from mosaic_it.mosaic.budget import UNCOUNTED, SampleCounter, TokenCounter
from mosaic_it.mosaic.stats import StatsTally

from test_budget_segments import ADVERSARIAL, JOINS, whole


@pytest.fixture(scope="module")
def records(sample_data):
    records = json.loads(sample_data.read_text(encoding="utf-8"))[:200]
    # Unclean texts and added tokens take the whole-count paths in the child too.
    for record, odd in zip(records, ADVERSARIAL[-12:]):
        record["instruction"] += " " + odd
    return records


def write(records, tokenizer, path, beside: bool, finish_hook=None, **overrides) -> tuple[bytes, dict, AugmentReport]:
    cfg = AugmentConfig(epochs=2, max_tokens=overrides.pop("max_tokens", 700), wrap_mode="uniform", **overrides)
    packer = Packer(records, cfg, TokenCounter(tokenizer))
    packer.defer = beside
    report = AugmentReport(input="-", output=str(path), records=len(records))
    tally = StatsTally()
    finish = packer.finish if finish_hook is None else finish_hook(packer.finish)
    report.samples = finisher.write_finished(path, packer.planned(report, False), finish, tally, beside)
    return path.read_bytes(), tally.result(), report


@pytest.mark.parametrize("max_tokens", [120, 700, 2048])
def test_a_child_writes_the_bytes_and_stats_one_process_writes(tmp_path, records, embedded_tokenizer, can_fork, max_tokens):
    here = write(records, embedded_tokenizer, tmp_path / "here.jsonl", False, max_tokens=max_tokens)
    beside = write(records, embedded_tokenizer, tmp_path / "beside.jsonl", True, max_tokens=max_tokens)
    assert beside[0] == here[0] and beside[1] == here[1]
    assert beside[2].as_dict() | {"output": ""} == here[2].as_dict() | {"output": ""}
    assert here[2].samples == here[0].count(b"\n") > 50
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_failing_child_leaves_this_process_to_write_everything(tmp_path, records, embedded_tokenizer, can_fork):
    parent = os.getpid()

    def failing_in_the_child(finish):
        def finish_or_fail(planned):
            if os.getpid() != parent and planned.ids[0] % 7 == 0:
                raise RuntimeError("the child fails partway")
            return finish(planned)
        return finish_or_fail

    here = write(records, embedded_tokenizer, tmp_path / "here.jsonl", False)
    failed = write(records, embedded_tokenizer, tmp_path / "failed.jsonl", True, failing_in_the_child)
    assert failed[:2] == here[:2]


def test_an_error_while_packing_stops_the_child_and_publishes_nothing(tmp_path, records, embedded_tokenizer, can_fork):
    cfg = AugmentConfig(epochs=1, max_tokens=700)
    packer = Packer(records, cfg, TokenCounter(embedded_tokenizer))
    report = AugmentReport(input="-", output="-", records=len(records))

    def stops_after_ten():
        for n, planned in enumerate(packer.planned(report, False)):
            if n == 10:
                raise KeyboardInterrupt
            yield planned

    path = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        finisher.write_finished(path, stops_after_ten(), packer.finish, None, True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left behind


def test_a_decision_reads_back_from_its_line_as_it_was(records, embedded_tokenizer):
    cfg = AugmentConfig(epochs=1, max_tokens=900, strategy="both")
    packer = Packer(records, cfg, TokenCounter(embedded_tokenizer))
    packer.defer = True
    decisions = list(packer.planned(AugmentReport(input="-", output="-", records=len(records)), False))
    assert {d.plan.strategy for d in decisions} == {"format", "order", "mask"}
    assert 0 < sum(d.tokens == UNCOUNTED for d in decisions) < len(decisions)
    for decision in decisions:
        line = finisher.encode(decision)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        again = finisher.decode(line)
        assert again.sides is None and again._replace(sides=decision.sides) == decision
        assert packer.finish(again) == packer.finish(decision)


def test_a_layout_as_a_tuple_lists_its_fields_in_order():
    import dataclasses

    from mosaic_it.mosaic.layout import Layout, draw_layout

    rng = random.Random(0)
    for _ in range(50):
        layout = draw_layout(rng)
        assert Layout(*layout.as_tuple()) == layout
        assert layout.as_dict() == dataclasses.asdict(layout)
        assert list(layout.as_dict()) == [f.name for f in dataclasses.fields(Layout)]
        assert layout.number(8) == (layout.numbering.format(i=9) if layout.numbering else "")


def test_the_bound_is_never_below_the_exact_count_and_only_proven_fits_are_left_uncounted(embedded_tokenizer):
    counter = TokenCounter(embedded_tokenizer)
    exact = SampleCounter(counter, ADVERSARIAL)
    rng = random.Random(1)
    left = 0
    for _ in range(400):
        sides = []
        for _ in range(2):
            side = []
            for _ in range(rng.randint(1, 6)):
                side += [rng.choice(JOINS), rng.choice(ADVERSARIAL)]
            sides.append(side)
        tokens = sum(counter.exact("".join(side)) for side in sides)
        estimate = sum(map(exact.piece_sum, sides))  # a sample over it never fits (budget.py)
        bound = sum(map(exact.bound, sides))
        assert tokens <= bound <= sum(len("".join(side).encode()) for side in sides)
        assert estimate <= bound
        for budget in (tokens - 1, tokens, estimate, bound - 1, bound):
            fit = exact.fit(sides, budget, deferrable=True)
            plain = exact.fit(sides, budget)
            assert plain == (tokens if max(tokens, estimate) <= budget else None)
            if fit == UNCOUNTED:
                left += 1
                assert budget >= bound and exact.count(sides) == tokens
            else:
                assert fit == plain
    assert left > 100


def test_a_tokenizer_whose_cuts_are_not_proven_is_never_left_uncounted(embedded_tokenizer):
    from test_budget_segments import _variants

    counter = TokenCounter(_variants(embedded_tokenizer)["normalized"])
    exact = SampleCounter(counter, ADVERSARIAL)
    sides = (["1. ", ADVERSARIAL[0], "\n", "2. ", ADVERSARIAL[15]], ["<A>", ADVERSARIAL[18], "</A>"])
    tokens = sum(whole(counter, ["".join(side) for side in sides]))
    assert exact.fit(sides, 10_000, deferrable=True) == tokens


def test_no_core_is_idle_while_other_processes_keep_every_core_busy():
    import subprocess
    import sys
    import time

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(forked._cores())]
    try:
        time.sleep(0.3)
        assert not any(forked.core_idle() for _ in range(5))
    finally:
        for process in busy:
            process.kill()
            process.wait()


@pytest.mark.parametrize("busy_looks, idle", [(0, True), (1, True), (2, True), (3, False), (5, False)])
def test_a_task_seen_in_a_look_or_two_does_not_make_a_core_busy(monkeypatch, busy_looks, idle):
    looks = iter([forked._cores()] * busy_looks + [0] * (5 - busy_looks))
    monkeypatch.setattr(forked, "_runnable_elsewhere", lambda: next(looks))
    assert forked.core_idle(samples=5, apart_s=0) is idle


def test_a_tally_gathered_elsewhere_merges_as_if_tallied_here():
    import orjson

    rng = random.Random(3)
    samples = [({"strategy": s, "rule": rng.choice([None, "REVERSE", "FIX"]), "epoch": rng.randrange(3)},
                rng.randint(1, 10), rng.randint(1, 2000)) for s in rng.choices(["format", "order", "mask"], k=300)]
    whole, here, there = StatsTally(), StatsTally(), StatsTally()
    for sample in samples:
        whole.add(*sample)
    for sample in samples[:100]:
        here.add(*sample)
    for sample in samples[100:]:
        there.add(*sample)
    here.merge(orjson.loads(orjson.dumps(there.gathered())))  # as the finisher's child sends it
    assert here.result() == whole.result()
    assert orjson.dumps(here.result()) == orjson.dumps(whole.result())


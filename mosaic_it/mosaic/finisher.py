"""Samples finished and written by a forked child while this process packs.

Packing decides the samples one after another (every random draw and budget check depends on the
ones before). What follows from a decision depends on nothing else: rendering its strings, its
exact token count where the budget check did not need it, its JSON line. So a child forked after
the up-front count takes the decisions through a pipe, finishes them on the second core and
writes them to the output file this process opened. The child's memos are its own copies and
every count is exact in either process, so the bytes do not depend on which process wrote them.
Where no child can be forked (mosaic_it.mosaic.forked), or the child fails in any way, this
process finishes every sample itself, from the start of the file.
"""
from __future__ import annotations

import gc
import mmap
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from mosaic_it.atomic import atomic_open
from mosaic_it.mosaic.budget import Sides
from mosaic_it.mosaic.engine import Plan
from mosaic_it.mosaic.forked import can_fork, fork_child, kill_child
from mosaic_it.mosaic.layout import Layout
from mosaic_it.mosaic.rules import rules_for
from mosaic_it.mosaic.stats import StatsTally

# Fewer decisions (records x epochs) finish in well under a second: not worth a second process.
FINISH_BESIDE_AT = 2_000
_PIPE_BUFFER = 1 << 16
# Decisions go out in small writes, so the child's backlog is seen early; about 40 fill one.
_SEND_BUFFER = 1 << 13
# A pipe holds about 300 decisions: more waiting than this, and the child is the slower one.
BACKLOG = 64
_DONE = struct.Struct("q")


class Planned(NamedTuple):
    ids: list[int]
    plan: Plan
    epoch: int
    tokens: int  # exact, or budget.UNCOUNTED
    sides: Sides | None  # the rendered pieces (instruction, output), where at hand


def encode(planned: Planned) -> bytes:
    """One line of JSON: the decision without its pieces (the child renders them again)."""
    ids, plan, epoch, tokens, _ = planned
    return orjson.dumps([ids, epoch, tokens, plan.strategy, plan.rule.name if plan.rule else None, plan.args,
                         plan.layout.as_tuple(), plan.meta_pieces, plan.response_positions],
                        option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> Planned:
    ids, epoch, tokens, strategy, rule, args, layout, meta, positions = orjson.loads(line)
    plan = Plan(Layout(*layout), strategy, rules_for(strategy)[rule] if rule else None, args, tuple(meta), positions)
    return Planned(ids, plan, epoch, tokens, None)


def write_lines(handle: IO[bytes], samples: Iterable[dict], tally: StatsTally | None = None) -> int:
    """The samples as JSON lines (orjson writes mosaic_it.jsonl.dumps's bytes for them:
    tests/test_augment_json.py), tallied for stats.json on the way where `tally` is given."""
    count = 0
    for sample in samples:
        if tally is not None:
            meta = sample["mosaic"]
            tally.add(meta, sample["count"], meta["tokens"])
        handle.write(orjson.dumps(sample, option=orjson.OPT_APPEND_NEWLINE))
        count += 1
    return count


def write_finished(path: str | Path, planned: Iterable[Planned], finish: Callable[[Planned], dict],
                   tally: StatsTally | None = None, beside: bool = True,
                   counted: Callable[[Planned], Planned] | None = None) -> int:
    """Write finish(decision) for every decision to `path` atomically; with `beside`, in a forked
    child where one can run. While the child lags behind, this process gives it decisions already
    counted (`counted`), so the work splits itself between the two. The number of samples written."""
    with atomic_open(path, "wb") as handle:
        child = _Child.start(handle, finish) if beside and can_fork() else None
        if child is None:
            return write_lines(handle, map(finish, planned), tally)
        try:
            kept = [child.send(counted(decision) if counted and child.behind() else decision)
                    for decision in planned]
            gathered = child.result()
        finally:
            child.stop()
        if gathered is None or len(gathered["counts"]) != len(kept):
            handle.seek(0)
            handle.truncate()
            return write_lines(handle, map(finish, kept), tally)
        if tally is not None:
            tally.merge(gathered)
        return len(kept)


class _Child:
    def __init__(self, pid: int, decisions: IO[bytes], results: int, done: mmap.mmap) -> None:
        self.pid, self.decisions, self.results, self.done = pid, decisions, results, done
        self.alive = True
        self.sent = 0

    def behind(self) -> bool:
        """Whether more decisions wait for the child than the pipe holds without blocking."""
        return self.sent - _DONE.unpack_from(self.done)[0] > BACKLOG

    @classmethod
    def start(cls, handle: IO[bytes], finish: Callable[[Planned], dict]) -> _Child | None:
        handle.flush()
        done = mmap.mmap(-1, _DONE.size)  # shared with the child: how many samples it has written
        decisions_in, decisions_out = os.pipe()
        results_in, results_out = os.pipe()
        def finish_all() -> None:
            gc.freeze()  # the collector never walks the parent's objects (each visit copies a page)
            tally = StatsTally()  # here, where a core has time to spare, not in the parent after

            def finished(lines: Iterable[bytes]) -> Iterator[dict]:
                for written, line in enumerate(lines):  # the writer asks for one once it wrote the last
                    _DONE.pack_into(done, 0, written)
                    yield finish(decode(line))

            with os.fdopen(decisions_in, "rb", _PIPE_BUFFER) as lines, \
                    os.fdopen(os.dup(handle.fileno()), "wb", _PIPE_BUFFER) as output:
                write_lines(output, finished(lines), tally)
            with os.fdopen(results_out, "wb") as results:
                results.write(orjson.dumps(tally.gathered()))

        try:
            pid = fork_child(finish_all, close=[decisions_out, results_in])
        except OSError:  # no process to spare: this one finishes everything
            for fd in (decisions_in, decisions_out, results_in, results_out):
                os.close(fd)
            return None
        os.close(decisions_in)
        os.close(results_out)
        return cls(pid, os.fdopen(decisions_out, "wb", _SEND_BUFFER), results_in, done)

    def send(self, planned: Planned) -> Planned:
        if self.alive:
            try:
                self.decisions.write(encode(planned))
            except OSError:  # the child is gone: this process will finish everything
                self.alive = False
        self.sent += 1
        return planned

    def result(self) -> dict | None:
        """The child's tally of the samples (StatsTally.gathered()), once it has written every
        sample; None if it failed."""
        try:
            self.decisions.close()
        except OSError:
            self.alive = False
        with os.fdopen(self.results, "rb") as results:
            self.results = -1
            data = results.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        if not self.alive or status != 0 or not data:
            return None
        gathered = orjson.loads(data)
        return gathered if isinstance(gathered, dict) else None

    def stop(self) -> None:
        """Where result() did not run to the end: the child's work is not wanted."""
        if self.pid:
            kill_child(self.pid)
            self.pid = 0
        if self.results >= 0:
            os.close(self.results)
            self.results = -1
        if not self.decisions.closed:
            try:
                self.decisions.close()
            except OSError:
                pass

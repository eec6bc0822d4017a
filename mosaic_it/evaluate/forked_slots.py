"""Greedy answers from two processes on a two-core CPU: half the prompts in a forked child.

One decoding process gains little from a second torch thread (1.2-1.4x per step here: the per-row
attention and the Python around each step run on one thread), so two processes on one thread each
answer a whole evaluate stage's prompts 1.16-1.27x faster (docs/benchmarks.md). Answers stay the
same: a continuous-decoder answer depends only on its prompt, its limit and the slot count
(evaluate/slots.py), each process keeps the slot count, and the matrix products give each row the
same result on one thread as on two (checked on the embedded model's prompts, token for token).

The child starts as a copy of this process (the model is shared, not reloaded), answers every
other prompt and sends each answer down a pipe as it finishes; this process answers the rest and
reads the child's answers between its own, so `on_done` hears every answer from this process only.
The child runs nothing but torch and writes to its pipe, so daemon threads (MLflow's system-metrics
sampler, which an evaluate run starts) do not keep it from forking; other Python threads (a
Prefect worker's) do. Where no child can be forked, or it fails, this process answers whatever the
child did not send.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from mosaic_it.mosaic.forked import can_fork, fork_child, kill_child

# Fewer prompts finish in a few seconds: not worth a second process.
FORK_AT_PROMPTS = 8
_PIPE_SIZE = 1 << 20  # room for every answer the child finishes before this process reads


def generate_greedy_forked(model: Any, prompts: Sequence[Sequence[int]], caps: Sequence[int], slots: int,
                           eos_ids: set[int], pad_id: int,
                           on_done: Callable[[int, list[int]], None] | None = None) -> list[list[int]]:
    """slots.generate_greedy, in two processes where that helps (same answers, same order)."""
    import torch

    from mosaic_it.evaluate.slots import generate_greedy

    threads = torch.get_num_threads()
    answers: list[list[int] | None] = [None] * len(prompts)

    def done(index: int, tokens: list[int]) -> None:
        answers[index] = tokens
        if on_done is not None:
            on_done(index, tokens)

    def answer_here(indices: list[int], hook: Callable[[], None] = lambda: None) -> None:
        def finished(position: int, tokens: list[int]) -> None:
            done(indices[position], tokens)
            hook()

        if indices:
            generate_greedy(model, [prompts[i] for i in indices], [caps[i] for i in indices], slots, eos_ids,
                            pad_id, on_done=finished)

    if len(prompts) < FORK_AT_PROMPTS or model.device.type != "cpu" or threads < 2 or not can_fork(daemons_ok=True):
        answer_here(list(range(len(prompts))))
        return answers  # type: ignore[return-value]
    mine, theirs = list(range(0, len(prompts), 2)), list(range(1, len(prompts), 2))
    child = _Child.start(lambda send: _answer_in_child(model, prompts, caps, theirs, slots, eos_ids, pad_id, send))
    if child is None:
        answer_here(mine + theirs)
        return answers  # type: ignore[return-value]
    try:
        torch.set_num_threads(1)
        try:
            answer_here(mine, lambda: child.receive(done, wait=False))
        finally:
            torch.set_num_threads(threads)
        child.receive(done, wait=True)
    finally:
        child.stop()  # at once where this process failed: the child's work is not wanted
    answer_here([i for i in theirs if answers[i] is None])  # what a failed child left
    return answers  # type: ignore[return-value]


def _answer_in_child(model: Any, prompts: Sequence[Sequence[int]], caps: Sequence[int], indices: list[int],
                     slots: int, eos_ids: set[int], pad_id: int, send: Callable[[int, list[int]], None]) -> None:
    import torch

    from mosaic_it.evaluate.slots import generate_greedy

    torch.set_num_threads(1)
    generate_greedy(model, [prompts[i] for i in indices], [caps[i] for i in indices], slots, eos_ids, pad_id,
                    on_done=lambda position, tokens: send(indices[position], tokens))


class _Child:
    """A forked child that runs job(send) and sends each (index, tokens) as one line of JSON."""

    def __init__(self, pid: int, reader: int) -> None:
        self.pid, self.reader = pid, reader
        self.pending = b""

    @classmethod
    def start(cls, job: Callable[[Callable[[int, list[int]], None]], None]) -> _Child | None:
        reader, writer = os.pipe()
        try:
            fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        except (AttributeError, OSError):  # not Linux, or over the system's pipe limit: blocks sooner
            pass

        def answer() -> None:
            with os.fdopen(writer, "wb") as pipe:
                def send(index: int, tokens: list[int]) -> None:
                    pipe.write(json.dumps([index, tokens]).encode() + b"\n")
                    pipe.flush()  # each answer as it finishes, whole

                job(send)

        try:
            pid = fork_child(answer, close=[reader])
        except OSError:
            os.close(reader)
            os.close(writer)
            return None
        os.close(writer)
        os.set_blocking(reader, False)
        return cls(pid, reader)

    def receive(self, done: Callable[[int, list[int]], None], wait: bool) -> None:
        """Hand every complete answer the child has sent to done(); with `wait`, until it ends."""
        if self.reader < 0:
            return
        if wait:
            os.set_blocking(self.reader, True)
        while True:
            try:
                data = os.read(self.reader, _PIPE_SIZE)
            except BlockingIOError:
                return
            *lines, self.pending = (self.pending + data).split(b"\n")
            for line in lines:
                index, tokens = json.loads(line)
                done(index, tokens)
            if not data:  # the child has ended (a partial last line is dropped: answered here)
                os.close(self.reader)
                self.reader = -1
                return

    def stop(self) -> None:
        if self.pid:
            kill_child(self.pid)
            self.pid = 0
        if self.reader >= 0:
            os.close(self.reader)
            self.reader = -1

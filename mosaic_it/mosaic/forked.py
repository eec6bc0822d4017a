"""Two halves of a job on two cores: one in a forked child, one here.

The child starts as a copy of this process (no interpreter start-up, no data sent over) and sends
back a JSON result through a pipe. Forking is only safe before other threads exist, so it is not
tried where this process runs other Python threads (a Prefect worker, a server); nor on one core
or without os.fork. Then, or if the child fails in any way, the caller gets None and does the
child's half itself: the result never depends on whether a child ran.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

# Rust tokenizers spread a batch over a thread pool; a forked child must not use the parent's.
_PARALLELISM = "TOKENIZERS_PARALLELISM"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def can_fork(daemons_ok: bool = False) -> bool:
    """Whether to fork: os.fork, two cores, and no other Python thread. With `daemons_ok`, daemon
    threads (MLflow's system-metrics sampler) are allowed: for a child that touches nothing but
    torch and its pipe, no lock such a thread may hold at the fork is ever taken."""
    _stop_tqdm_monitor()
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    return (hasattr(os, "fork") and _cores() > 1
            and (not others or (daemons_ok and all(t.daemon for t in others))))


def _stop_tqdm_monitor() -> None:
    """tqdm's monitor thread, started by the first progress bar (ours or a library's, such as
    transformers' weight loading), only tunes how often a slow bar redraws: stopped, and no
    longer started, it no longer keeps this process from forking."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is None:
        return
    tqdm.tqdm.monitor_interval = 0
    for thread in threading.enumerate():
        if type(thread).__name__ == "TMonitor" and thread is not threading.current_thread():
            thread.exit()  # type: ignore[attr-defined]


def core_idle(samples: int = 5, apart_s: float = 0.005) -> bool:
    """Whether a second process would have a core to itself now: in most of a few looks, other
    processes keep fewer cores busy than there are less one. This process's own threads do not
    count (the tokenizer's pool may still be spinning), nor does a task that shows in a look or two
    (on an idle machine, a kernel thread is runnable in about one look in thirty). Where another
    job keeps the cores busy, a second process only adds its own overhead. True where the kernel
    does not say."""
    busy = 0
    try:
        for look in range(samples):
            if look:
                time.sleep(apart_s)
            busy += _runnable_elsewhere() >= _cores() - 1
    except (OSError, ValueError, IndexError):
        return True
    return busy <= samples // 2


def _runnable_elsewhere() -> int:
    with open("/proc/loadavg", encoding="ascii") as handle:
        runnable = int(handle.read().split()[3].split("/")[0])
    mine = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat", encoding="ascii", errors="replace") as handle:
                mine += handle.read().rsplit(")", 1)[1].split()[0] == "R"
        except OSError:  # the thread has ended
            pass
    return runnable - mine


def in_two(steps: int, here: Callable[[int], None], there: Callable[[int], Any],
           take: Callable[[int, Any], None]) -> None:
    """Run steps 0 to steps-1 on two cores. This process and a forked child each claim the next
    step no one has claimed and run it: here(step) in this process, there(step) in the child,
    whose result is taken in here, take(step, result) as read back from JSON, between two of this
    process's steps. So both keep busy to the end whatever each step costs on either side, and
    little is left to take in then. Where no child can run, or it fails, this process runs every
    step whose result did not come back: the outcome never depends on the child."""
    taken: set[int] = set()
    ran = set(_run_claimed(steps, here, there, take, taken) if can_fork() else ())
    for step in range(steps):
        if step not in ran and step not in taken:
            here(step)


def _run_claimed(steps: int, here: Callable[[int], None], there: Callable[[int], Any],
                 take: Callable[[int, Any], None], taken: set[int]) -> Iterator[int]:
    """The steps this process ran, sharing them with a child (in_two)."""
    claims, results = _Claims(steps), os.pipe()
    _widen(results[1])

    def run_there() -> None:
        with os.fdopen(results[1], "wb") as pipe:
            while (step := claims.next()) is not None:
                pipe.write(_dumps([step, there(step)]) + b"\n")  # JSON holds no raw newline
                pipe.flush()

    def took(item: list) -> None:
        step, result = item
        take(step, result)
        taken.add(step)

    pid = fork_child(run_there, close=[results[0]])
    os.close(results[1])
    lines = _Lines(results[0], took)
    try:
        while (step := claims.next()) is not None:
            here(step)
            yield step
            lines.take_arrived()
        lines.take_all()
        os.waitpid(pid, 0)
        pid = 0
    finally:
        if pid:  # this process failed or was interrupted: the child's work is not wanted
            kill_child(pid)
        lines.close()
        claims.close()


# A step's result is 0.25-0.7 MB of JSON on the full Alpaca file. In a pipe of the default 64 KB,
# the child waited for every chunk to be read, and the reader waits for the GIL (up to 5 ms) after
# each read: 0.15-0.2 core-seconds of the up-front count went idle so.
_RESULT_PIPE = 1 << 20  # Linux's default most for a process without privileges


def _widen(fd: int) -> None:
    """Let the pipe hold a whole result where the system allows (Linux); as it was elsewhere."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _RESULT_PIPE)
    except (ImportError, AttributeError, OSError):
        pass


class _Claims:
    """Step numbers in a pipe that both processes read from: a read of a few bytes is atomic, so
    each step is claimed once."""

    def __init__(self, steps: int) -> None:
        if steps * _STEP.size > 1 << 16:  # written before anyone reads: must fit the pipe's buffer
            raise ValueError(f"{steps} steps: at most {(1 << 16) // _STEP.size} can be shared")
        self.fd, writer = os.pipe()
        with os.fdopen(writer, "wb") as pipe:  # a pipe holds 16,384 of them before a write blocks
            pipe.write(b"".join(_STEP.pack(step) for step in range(steps)))

    def next(self) -> int | None:
        data = os.read(self.fd, _STEP.size)
        return _STEP.unpack(data)[0] if data else None

    def close(self) -> None:
        os.close(self.fd)


_STEP = struct.Struct("<I")


class _Lines:
    """The child's results, one JSON document a line. A thread reads the pipe as the child writes
    (were it read only between two of this process's steps, a full pipe would hold the child up);
    the lines are taken in this thread."""

    def __init__(self, fd: int, take: Callable[[Any], None]) -> None:
        self.fd, self.take = fd, take
        self.chunks: list[bytes] = []  # appended by the reader, taken here (list operations are atomic)
        self.pending = b""  # the start of a line still arriving
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while chunk := os.read(self.fd, 1 << 20):
            self.chunks.append(chunk)

    def take_arrived(self) -> None:
        while self.chunks:
            *lines, self.pending = (self.pending + self.chunks.pop(0)).split(b"\n")
            for line in lines:
                self.take(_loads(line))

    def take_all(self) -> None:
        """Every line, once the child has closed its end of the pipe."""
        self.reader.join()
        self.take_arrived()

    def close(self) -> None:
        """Once the child is gone, and with it the pipe's other end: the reader ends, the pipe closes."""
        self.reader.join()
        os.close(self.fd)


_PLAIN = b"j"  # never the first byte of JSON: what follows is the json module's


def _loads(data: bytes) -> Any:
    return json.loads(data[1:]) if data.startswith(_PLAIN) else orjson.loads(data)


def _dumps(result: Any) -> bytes:
    """JSON of the result: orjson's, several times faster on a large one; the json module's where
    orjson refuses it (a lone surrogate, an integer past 64 bits), marked as such."""
    try:
        return orjson.dumps(result)
    except TypeError:
        return _PLAIN + json.dumps(result, separators=(",", ":")).encode()


def fork_child(job: Callable[[], None], close: Sequence[int] = ()) -> int:
    """Fork a child that closes the descriptors `close` (this process's ends of its pipes), runs
    job() and exits at once, with status 0 where job() returned and 1 where it raised: it never
    returns into the caller's code, runs no atexit handler and flushes no buffer copied from this
    process. The child's pid; OSError where no process could be forked."""
    pid = _fork()
    if pid == 0:
        status = 1
        try:
            for fd in close:
                os.close(fd)
            job()
            status = 0
        finally:
            os._exit(status)
    return pid


def kill_child(pid: int) -> None:
    """End a child whose work is not wanted, and reap it (not yet reaped, it can always be killed)."""
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _fork() -> int:
    # The child tokenizes on one thread (the two processes share the cores) and, with the
    # variable set before the fork, the tokenizers library does not warn about the fork.
    before = os.environ.get(_PARALLELISM)
    os.environ[_PARALLELISM] = "false"
    pid = -1
    try:
        pid = os.fork()
        return pid
    finally:
        if pid != 0:  # this process, forked or not
            if before is None:
                del os.environ[_PARALLELISM]
            else:
                os.environ[_PARALLELISM] = before


class Standby:
    """A forked child that runs prepare() at once (imports, say), then waits for one JSON message
    and runs job(message): work whose start-up overlaps this process's own work. Where no child
    can be forked, nothing runs and finish() says so."""

    def __init__(self, prepare: Callable[[], Any], job: Callable[[Any], None]) -> None:
        self.pid = 0
        if not can_fork():
            return
        reader, writer = os.pipe()

        def wait_then_run() -> None:
            prepare()
            with os.fdopen(reader, "rb") as pipe:
                message = pipe.read()
            if not message:  # nothing at all: cancelled
                raise SystemExit(1)
            job(json.loads(message))

        pid = fork_child(wait_then_run, close=[writer])
        os.close(reader)
        self.pid, self.writer = pid, writer

    def finish(self, message: Any) -> bool:
        """Send the message and wait: True if the child ran the job to the end."""
        if not self.pid:
            return False
        try:
            with os.fdopen(self.writer, "wb") as pipe:
                pipe.write(json.dumps(message, separators=(",", ":")).encode())
        except OSError:  # the child is gone
            pass
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return status == 0

    def cancel(self) -> None:
        if self.pid:
            kill_child(self.pid)
            os.close(self.writer)
            self.pid = 0

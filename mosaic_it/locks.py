"""Exclusive locks on files and output folders, held with flock(2).

The kernel drops a flock when its process dies, however it dies (kill -9 included), so a lock
left by a dead run is never stale: the next run simply acquires it.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from mosaic_it.errors import MosaicItError


class LockHeld(MosaicItError):
    """Another live process holds the lock."""


@contextlib.contextmanager
def file_lock(path: str | Path, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed; a symlink there is refused, never followed).

    With wait=False a lock held by another process raises LockHeld naming its pid.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise MosaicItError(f"{path}: cannot open lock file ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise LockHeld(f"{path}: held by another process (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def lock_path(folder: str | Path) -> Path:
    # Beside the folder, not inside: DVC hashes the output folder, and a lock file must not join it.
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def output_lock(folder: str | Path, stage: str) -> Iterator[None]:
    """One process at a time writes an output folder (one arm's training or evaluation)."""
    held = contextlib.ExitStack()
    try:
        held.enter_context(file_lock(lock_path(folder), wait=False))
    except LockHeld as exc:
        holder = str(exc).rsplit("(pid ", 1)[-1].rstrip(")")
        raise LockHeld(f"{folder}: another {stage} is writing this folder (pid {holder}); "
                       f"wait for it to finish or choose another arm") from None
    with held:
        yield

"""Atomic outputs: a failure (an exception, a full disk, a kill) never leaves a half-written or
emptied output behind; the previous version stays byte-identical until the new one is complete.

Everything is written to a hidden temporary sibling (same folder, so the rename cannot cross
filesystems) and moved into place with os.replace once finished. An exception removes the
temporary; a process killed with SIGKILL cannot, so the next write to the same path sweeps
temporaries left by processes that no longer exist.

    with atomic_open(path) as handle: ...          # streamed text or bytes
    with atomic_path(path) as tmp: fig.savefig(tmp)  # a library that wants a file name
    with atomic_dir(folder) as tmp: model.save_pretrained(tmp)  # a whole folder
    with publish_together(): ...                     # several files, replaced only if all succeed
    write_text(path, text) / write_bytes(path, data)
Pass fsync=True where losing the file would lose work (checkpoints).
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_MARK = ".tmp-"
ASIDE_MARK = ".old-"  # an old folder moved aside while its replacement is renamed into place
# Inside `publish_together`: (temporary, destination) pairs waiting for the block to succeed.
_PENDING: contextvars.ContextVar[list[tuple[Path, Path]] | None] = contextvars.ContextVar("pending", default=None)


def _temp_sibling(path: Path, mark: str = TEMP_MARK) -> Path:
    # Hidden, and named after the writer's pid so a later writer can tell an orphan from a live one.
    return path.with_name(f".{path.name}{mark}{os.getpid()}-{secrets.token_hex(4)}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans(path: Path) -> list[Path]:
    """Clear what writers of `path` that no longer exist left behind (they were killed mid-write):
    temporaries are removed; an old folder moved aside just before the kill is put back if
    nothing replaced it."""
    removed = []
    if not path.parent.is_dir():
        return removed
    for entry in sorted(path.parent.iterdir()):
        for mark in (TEMP_MARK, ASIDE_MARK):
            prefix = f".{path.name}{mark}"
            pid = entry.name[len(prefix):].split("-", 1)[0] if entry.name.startswith(prefix) else ""
            if not pid.isdigit() or _pid_alive(int(pid)):
                continue
            if mark == ASIDE_MARK and not (path.exists() or path.is_symlink()):
                os.replace(entry, path)
            else:
                _remove(entry)
                removed.append(entry)
    return removed


def _remove(path: Path) -> None:
    # A symlink is unlinked, never followed: rmtree of a link's target could reach anywhere.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(Path(folder))


@contextlib.contextmanager
def atomic_path(path: str | Path, fsync: bool = False) -> Iterator[Path]:
    """A temporary file name to write to; it replaces `path` when the block finishes without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_orphans(path)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{path}: nothing was written")
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        pending = _PENDING.get()
        if pending is not None:
            pending.append((tmp, path))
            return
        os.replace(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write (a full disk) names the output, as other OSErrors do
        raise
    if fsync:
        fsync_dir(path.parent)


@contextlib.contextmanager
def publish_together() -> Iterator[None]:
    """Files written inside (via this module) replace their old versions only when the whole block
    succeeds, so a stage failing on its third output leaves its first two old ones too."""
    if _PENDING.get() is not None:  # an enclosing block publishes for us
        yield
        return
    pending: list[tuple[Path, Path]] = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            _remove(tmp)
        raise
    finally:
        _PENDING.reset(token)
    for tmp, path in pending:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None,
                fsync: bool = False) -> Iterator[IO[Any]]:
    """open() for writing ("w" or "wb") whose result appears at `path` only when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} is not 'w' or 'wb'")
    binary = mode == "wb"
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else newline) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())


def write_bytes(path: str | Path, data: bytes, fsync: bool = False) -> Path:
    with atomic_open(path, "wb", fsync=fsync) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, fsync: bool = False, encoding: str = "utf-8") -> Path:
    with atomic_open(path, "w", encoding=encoding, newline="\n", fsync=fsync) as handle:
        handle.write(text)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: str | Path, fsync: bool = False) -> Iterator[Path]:
    """An empty temporary folder to fill; it replaces the folder `path` when the block succeeds.

    A folder cannot be renamed over a non-empty one, so the old folder is first moved aside
    (one rename) and deleted after the new one is in place. A kill between those two renames
    leaves the old folder under its hidden aside name, never a mix of old and new files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_orphans(path)
    tmp = _temp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        if fsync:
            _fsync_tree(tmp)
        aside = None
        if path.is_symlink() or path.exists():
            aside = _temp_sibling(path, ASIDE_MARK)
            os.replace(path, aside)  # a symlink moves as a link; its target is never touched
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    if aside is not None:
        _remove(aside)
    if fsync:
        fsync_dir(path.parent)

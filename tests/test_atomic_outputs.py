"""Fault injection: a full disk, a read-only folder, a kill mid-write, an output that is the input.

After each fault the previous outputs are byte-identical and no partial or temporary file is left
where the outputs live (a SIGKILLed writer's temporary is swept by the next write).
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mosaic_it import atomic
from mosaic_it.atomic import atomic_dir, write_text
from mosaic_it.config.data import SplitConfig
from mosaic_it.data.split import run_split
from mosaic_it.jsonl import write_jsonl

SPLIT_OUTPUTS = ("train.jsonl", "heldout.jsonl", "split.json")


def records(n: int, width: int = 10) -> list[dict[str, str]]:
    return [{"instruction": f"Task {i} " + "w" * width, "input": "", "output": f"Answer {i}"} for i in range(n)]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every entry of the folder (hidden ones included) with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def previous_split(tmp_path):
    """A folder holding a finished split of 20 records, and a bigger input for the next run."""
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    write_jsonl(small, records(20))
    write_jsonl(big, records(2000, width=200))
    out = tmp_path / "split"
    run_split(SplitConfig(input=str(small), output_dir=str(out)))
    return big, out, snapshot(out)


class FillsUp:
    """A file handle on a disk with `room` bytes left: the write that overflows raises ENOSPC."""

    def __init__(self, handle, room: list[int]) -> None:
        self._handle, self._room = handle, room

    def write(self, data):
        self._room[0] -= len(data)
        if self._room[0] < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


def test_a_disk_filling_up_halfway_keeps_the_previous_outputs(previous_split, monkeypatch):
    big, out, before = previous_split
    room = [300_000]  # train.jsonl (about 460 kB) does not fit
    monkeypatch.setattr(atomic, "open", lambda *a, **k: FillsUp(open(*a, **k), room), raising=False)
    with pytest.raises(OSError) as raised:
        run_split(SplitConfig(input=str(big), output_dir=str(out)))
    assert raised.value.errno == errno.ENOSPC
    assert snapshot(out) == before


def test_a_failure_on_the_last_output_keeps_all_the_previous_ones(previous_split, monkeypatch):
    big, out, before = previous_split
    room = [10**9]
    real_open = open

    def split_json_fails(path, *a, **k):  # train.jsonl and heldout.jsonl are complete by then
        handle = real_open(path, *a, **k)
        return FillsUp(handle, [0]) if ".split.json" in str(path) else FillsUp(handle, room)

    monkeypatch.setattr(atomic, "open", split_json_fails, raising=False)
    with pytest.raises(OSError):
        run_split(SplitConfig(input=str(big), output_dir=str(out)))
    assert snapshot(out) == before


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB tmpfs (needs root; elsewhere the monkeypatched test above covers ENOSPC)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_really_full_disk_keeps_the_previous_outputs(tmp_path, small_disk):
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    write_jsonl(small, records(20))
    write_jsonl(big, records(2000, width=200))
    out = small_disk / "split"
    run_split(SplitConfig(input=str(small), output_dir=str(out)))
    before = snapshot(out)
    with pytest.raises(OSError) as raised:
        run_split(SplitConfig(input=str(big), output_dir=str(out)))
    assert raised.value.errno == errno.ENOSPC
    assert snapshot(out) == before


def test_a_read_only_folder_keeps_the_previous_outputs(tmp_path, previous_split):
    big, out, before = previous_split
    if os.geteuid() == 0:  # root writes through permissions: make the folder a read-only mount
        if subprocess.run(["mount", "--bind", str(out), str(out)], capture_output=True).returncode != 0:
            pytest.skip("cannot bind-mount as root here")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(out)], check=True)
    else:
        out.chmod(0o555)
    try:
        with pytest.raises(OSError) as raised:
            run_split(SplitConfig(input=str(big), output_dir=str(out)))
        assert raised.value.errno in (errno.EROFS, errno.EACCES)
        assert snapshot(out) == before
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(out)], check=True)
        else:
            out.chmod(0o755)


KILLED_WRITER = """
import os, signal, sys
from mosaic_it.atomic import atomic_dir
from mosaic_it.jsonl import write_jsonl

def rows():
    for i in range(2000):
        if i == 1500:
            os.kill(os.getpid(), signal.SIGKILL)
        yield {"i": i, "text": "x" * 100}

if sys.argv[1] == "file":
    write_jsonl(sys.argv[2], rows())
else:
    with atomic_dir(sys.argv[2]) as tmp:
        (tmp / "weights.bin").write_bytes(b"new" * 1000)
        write_jsonl(tmp / "rows.jsonl", rows())
"""


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_sigkill_mid_write_keeps_the_previous_output_and_the_next_write_sweeps_the_leftover(tmp_path, repo_root, kind):
    out = tmp_path / "out"
    out.mkdir()
    target = out / ("samples.jsonl" if kind == "file" else "model")
    if kind == "file":
        write_jsonl(target, [{"old": True}])
    else:
        with atomic_dir(target) as tmp:
            (tmp / "weights.bin").write_bytes(b"old")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, kind, str(target)], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    leftovers = sorted(p.name for p in out.iterdir() if p.name != target.name)
    assert {k: v for k, v in after.items() if k.parts[0] == target.name} == before
    # The killed writer's half-written temporary is hidden and named after its (dead) pid ...
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{target.name}.tmp-")

    if kind == "file":  # ... and the next write of the same output removes it.
        write_jsonl(target, [{"new": True}])
        assert json.loads(target.read_text()) == {"new": True}
    else:
        with atomic_dir(target) as tmp:
            (tmp / "weights.bin").write_bytes(b"newer")
        assert (target / "weights.bin").read_bytes() == b"newer"
    assert sorted(p.name for p in out.iterdir()) == [target.name]


def test_an_exception_inside_a_folder_write_keeps_the_old_folder(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("save failed")
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (target / "a.txt").read_text() == "old"


def test_replacing_a_symlinked_output_never_writes_through_the_link(tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("precious")
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "report.md"
    link.symlink_to(elsewhere)
    write_text(link, "report")
    assert elsewhere.read_text() == "precious" and not link.is_symlink() and link.read_text() == "report"


@pytest.mark.slow
def test_augment_with_its_input_as_output_is_refused_and_the_input_is_unchanged(tmp_path, repo_root):
    data = tmp_path / "records.jsonl"
    write_jsonl(data, records(5))
    (tmp_path / "sub").mkdir()
    before = data.read_bytes()
    for output in (data, tmp_path / "sub" / ".." / "records.jsonl"):
        proc = subprocess.run([sys.executable, "-c", "from mosaic_it.cli import main; main()", "augment", str(data),
                               "--output", str(output), "--params", str(repo_root / "params.yaml")],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [
            f"error: augment: output {output} is the input {data}; writing it would destroy the input, "
            "choose another output path"]
    assert data.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl", "sub"]


KILLED_BETWEEN_RENAMES = """
import os, signal, sys
from mosaic_it import atomic

real_replace = os.replace
def replace(src, dst):
    if ".tmp-" in str(src):  # the old folder is already aside; die before the new one is in place
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)

atomic.os.replace = replace
with atomic.atomic_dir(sys.argv[1]) as tmp:
    (tmp / "weights.bin").write_bytes(b"new")
"""


def test_a_kill_between_the_two_renames_of_a_folder_swap_gets_the_old_folder_back(tmp_path, repo_root):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"old")
    proc = subprocess.run([sys.executable, "-c", KILLED_BETWEEN_RENAMES, str(target)], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not target.exists() and len(list(tmp_path.iterdir())) == 2  # old aside, new unpublished
    atomic.sweep_orphans(target)
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (target / "weights.bin").read_bytes() == b"old"

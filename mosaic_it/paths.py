"""Output paths checked against what a command reads and against symlinks that leave the output folder.

An output that is, or resolves to, an input (the same path, a symlink, `..`, a hard link) would
destroy the input the moment the output is written, so the command is refused before any work.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from mosaic_it.errors import MosaicItError

PathLike = str | Path


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when a and b name one file: equal once resolved, or one inode (a hard link)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet: resolution above was the whole answer
        return False


def is_within(path: PathLike, folder: PathLike) -> bool:
    """True when path, with every symlink resolved, is folder or lies below it."""
    resolved, root = Path(path).resolve(), Path(folder).resolve()
    return resolved == root or root in resolved.parents


def refuse_overwriting_inputs(stage: str, inputs: Iterable[PathLike | None], outputs: Iterable[PathLike],
                              output_dirs: Iterable[PathLike] = ()) -> None:
    """Raise a one-line error when an output file is an input, or an input lies in a folder the stage
    writes into or replaces (a trained model/ folder, data docs, an evaluation arm's folder)."""
    inputs = [Path(p) for p in inputs if p is not None and str(p) != ""]
    outputs, output_dirs = [Path(p) for p in outputs], [Path(p) for p in output_dirs]
    for source in inputs:
        for target in outputs:
            if same_file(source, target):
                raise MosaicItError(f"{stage}: output {target} is the input {source}; "
                                    "writing it would destroy the input, choose another output path")
        for folder in output_dirs:
            if is_within(source, folder):
                raise MosaicItError(f"{stage}: input {source} lies in the output folder {folder}, "
                                    "which this command writes into; choose another output folder")


def remove_within(path: PathLike, folder: PathLike) -> None:
    """Delete path (a file or a whole folder) that belongs to the output folder `folder`.

    A symlink is removed as a link and never followed; a path that resolves outside `folder`
    (through a symlink on the way) is refused with a one-line error instead of being deleted.
    """
    path = Path(path)
    if not path.is_symlink() and not path.exists():
        return
    if not is_within(path, folder):
        raise MosaicItError(f"{path}: resolves outside the output folder {folder} through a symlink; "
                            "refusing to delete it (remove the link)")
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def refuse_symlink_outside(path: PathLike, folder: PathLike) -> None:
    """Raise a one-line error when writing to path would go through a symlink out of `folder`."""
    if (Path(path).is_symlink() or Path(path).exists()) and not is_within(path, folder):
        raise MosaicItError(f"{path}: is a symlink leading outside the output folder {folder}; "
                            "refusing to write through it (remove the link)")

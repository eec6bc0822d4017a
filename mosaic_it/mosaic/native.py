"""Which modules the build compiles with mypyc (setup.py), and the guard that keeps a compiled
module from running code older than its source.

A compiled extension sits beside its source, and Python imports the extension first: after an
edit, a checkout or a pull, it would run the old code. So the build records each compiled
source's SHA-256 in a manifest beside them. Where a source no longer matches, or
MOSAIC_IT_PURE_PYTHON is set (to profile or debug the Python itself), every compiled module is
imported from its source instead. All of them go back together, because compiled modules call
each other directly inside their group. Standard library only: setup.py loads this file by path.
"""
from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

COMPILED = tuple(f"mosaic_it.mosaic.{leaf}" for leaf in (
    "draws", "segments", "joined", "budget", "record_sums", "layout", "engine", "rules", "order_rules", "mask_rules",
    "phrasing", "packer", "finisher", "stats"))
MANIFEST = "compiled.json"
PURE_VARIABLE = "MOSAIC_IT_PURE_PYTHON"
FOLDER = Path(__file__).resolve().parent


def source_path(name: str) -> Path:
    """A compiled module's source, relative to the project root."""
    return Path(*name.split(".")).with_suffix(".py")


def stale(folder: Path = FOLDER) -> list[str]:
    """The compiled modules whose source is not the one compiled; none where nothing was."""
    try:
        digests = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["sha256"]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError):  # an unreadable manifest proves nothing
        return list(COMPILED)
    return [name for name in COMPILED
            if digests.get(name) != hashlib.sha256((folder / source_path(name).name).read_bytes()).hexdigest()]


class _Sources(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' sources ahead of their extensions."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(name, self.folder / source_path(name).name)


def use_sources_where_needed() -> None:
    """Before any compiled module is imported: import them all from source where one is stale
    (saying so once) or where MOSAIC_IT_PURE_PYTHON asks for it."""
    if any(isinstance(finder, _Sources) for finder in sys.meta_path):
        return
    if not os.environ.get(PURE_VARIABLE):
        changed = stale()
        if not changed:
            return
        print(f"mosaic-it: {', '.join(str(source_path(name)) for name in changed)} changed since it was compiled; "
              "running the Python sources (slower) until `bash scripts/setup.sh` compiles them again", file=sys.stderr)
    sys.meta_path.insert(0, _Sources(FOLDER))


def compiled() -> bool:
    """Whether the compiled modules are the ones running."""
    from mosaic_it.mosaic import joined

    return not joined.__file__.endswith(".py")  # type: ignore[union-attr]

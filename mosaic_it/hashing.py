"""Content hashes of files and folder trees: what a cached result is checked against before reuse."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def hash_paths(paths: Iterable[str | Path]) -> str:
    """sha256 over files and directory trees (relative names included); missing paths hash as absent."""
    digest = hashlib.sha256()
    for root in map(Path, paths):
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(root) if root.is_dir() else path.name).encode())
            if path.is_file():
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            else:
                digest.update(b"<absent>")
    return digest.hexdigest()


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()

"""Done markers: a finished study step records what it was asked (a fingerprint of its settings and
inputs) and what it produced (content hashes of its outputs). A step is skipped only when both
still match, so an interrupted or partly deleted study reruns exactly what is missing or stale."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_it.hashing import hash_paths
from mosaic_it.jsonl import write_json


def is_done(marker: Path, fingerprint: str, outputs: Sequence[Path]) -> bool:
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or recorded.get("fingerprint") != fingerprint:
        return False
    hashes = recorded.get("outputs", {})
    return all(path.exists() and hashes.get(str(path)) == hash_paths([path]) for path in outputs)


def mark_done(marker: Path, fingerprint: str, outputs: Sequence[Path], info: Mapping[str, Any]) -> None:
    write_json(marker, {"fingerprint": fingerprint,
                        "outputs": {str(path): hash_paths([path]) for path in outputs}, **info})


def read_info(marker: Path) -> dict[str, Any]:
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

"""Where a result came from: content hashes of data and models, the train run behind a model, and
the git commit / DVC experiment a run was started from.

A training output folder holds `lineage.json` (its MLflow run id, data and base-model hashes), so
whatever reads that folder later (evaluate, compare) can name the run that produced it.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from mosaic_it.hashing import hash_paths

LINEAGE_FILE = "lineage.json"
EMBEDDED_MODEL_ID = "SmolLM2-135M-Instruct (embedded gguf Q4_1)"
# Set by DVC for every stage command; the first two only under `dvc exp run`.
DVC_ENV_TAGS = {"DVC_EXP_NAME": "dvc.exp_name", "DVC_EXP_BASELINE_REV": "dvc.exp_baseline_rev",
                "DVC_STAGE": "dvc.stage"}


@functools.lru_cache(maxsize=8)
def _cached_hash(path: str, size: int, mtime_ns: int) -> str:
    return hash_paths([path])


def base_model(name: str | None) -> dict[str, str | None]:
    """{"id", "sha256"} of the model a run starts from. The embedded default is named for what it
    is and hashed as the GGUF file it is converted from; a local folder or file is hashed as its
    content; a hub id is only named (its files are not ours to read here)."""
    from mosaic_it.models.embedded import GGUF_FILE, gguf_package_dir, is_embedded

    if is_embedded(name):
        path = gguf_package_dir() / GGUF_FILE
        return {"id": EMBEDDED_MODEL_ID, "sha256": file_sha256(path)}
    local = Path(str(name))
    if local.exists():
        return {"id": str(name), "sha256": hash_paths([local])}
    return {"id": str(name), "sha256": None}


def file_sha256(path: str | Path) -> str:
    """Content hash of a large file that may be read many times in one process (the embedded GGUF)."""
    stat = Path(path).stat()
    return _cached_hash(str(path), stat.st_size, stat.st_mtime_ns)


def write_lineage(out_dir: str | Path, record: dict[str, Any]) -> Path:
    from mosaic_it.jsonl import write_json

    path = Path(out_dir) / LINEAGE_FILE
    write_json(path, record)
    return path


def read_lineage(folder: str | Path | None) -> dict[str, Any]:
    """The lineage record of a training output folder ({} when there is none or it is unreadable:
    lineage is provenance for the record, never a reason to fail a stage)."""
    if folder is None:
        return {}
    path = Path(folder) / LINEAGE_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def train_lineage_params(record: dict[str, Any]) -> dict[str, str]:
    """A train lineage record as flat MLflow params (`<prefix>train_run_id`, hashes)."""
    keys = ("run_id", "data_md5", "base_model", "base_model_sha256")
    return {f"train_{k}": str(record[k]) for k in keys if record.get(k) is not None}


def git_commit() -> str | None:
    """HEAD of the checkout the process runs in (None outside git), plus `-dirty` when tracked
    files differ from it: a run's code is only that commit when nothing was edited."""
    cwd = os.getcwd()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return f"{commit}-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else commit


def run_context_tags() -> dict[str, str]:
    """Tags naming where a run was started from: the git commit and, under DVC, the stage and experiment."""
    tags = {tag: os.environ[var] for var, tag in DVC_ENV_TAGS.items() if os.environ.get(var)}
    commit = git_commit()
    if commit is not None:
        tags["mosaic_it.git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
    return tags

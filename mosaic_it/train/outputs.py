"""What guards an arm's output folder while it trains: inputs it must not overwrite, one writer at a
time, and the MLflow run a killed training left RUNNING, continued when the same configuration resumes."""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from mosaic_it.atomic import write_text
from mosaic_it.config.train import TrainConfig
from mosaic_it.locks import output_lock
from mosaic_it.paths import refuse_overwriting_inputs
from mosaic_it.train.distributed import DistInfo

RUN_FILE = "mlflow_run.json"


def arm_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.output_dir) / cfg.arm


@contextlib.contextmanager
def arm_outputs(cfg: TrainConfig, info: DistInfo) -> Iterator[None]:
    """Refuse data or a base model inside the arm's folder; hold the folder's lock (main process)."""
    out = arm_dir(cfg)
    refuse_overwriting_inputs("train", [cfg.data, cfg.model], [], [out])
    if not info.is_main:
        yield
        return
    with output_lock(out, "training"):
        yield


def run_to_continue(ckpt_root: Path) -> str | None:
    """The MLflow run id recorded beside these checkpoints (same configuration: the fingerprint
    check wipes checkpoints of any other). tracking.stage_run continues it if it is still RUNNING."""
    try:
        return str(json.loads((ckpt_root / RUN_FILE).read_text(encoding="utf-8"))["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember_run(ckpt_root: Path, run_id: str) -> None:
    write_text(ckpt_root / RUN_FILE, json.dumps({"run_id": run_id}) + "\n")

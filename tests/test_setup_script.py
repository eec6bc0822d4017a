"""scripts/setup.sh on a set-up checkout: installs nothing, converts nothing, says where the model is."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mosaic_it.models.embedded import embedded_model_dir

ROOT = Path(__file__).resolve().parents[1]


def test_setup_sh_run_again_installs_and_converts_nothing() -> None:
    stamp = ROOT / ".venv" / ".mosaic-it-installed"
    if not stamp.is_file() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        pytest.skip("setup.sh has not run since pyproject.toml changed; running it here would install")
    model_dir = embedded_model_dir(convert=False)
    if model_dir is None:
        pytest.skip("the embedded model is not converted in this cache; running setup.sh here would convert it")
    before = stamp.stat().st_mtime_ns
    env = {**os.environ, "PS4": "+ "}
    run = subprocess.run(["bash", "-x", "scripts/setup.sh"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"embedded model: {model_dir}"]
    commands = [line for line in run.stderr.splitlines() if line.startswith("+ ")]
    assert not [c for c in commands if "pip install" in c or "venv_install" in c or "venv" in c.split()[:4]]
    assert not [c for c in commands if c.startswith("+ wait") or c.startswith("+ touch")]
    assert stamp.stat().st_mtime_ns == before
    assert [p.name for p in model_dir.parent.iterdir() if p.name.startswith(".convert-")] == []

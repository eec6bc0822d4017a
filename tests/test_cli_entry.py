"""The console script runs `main` in a process tuned for living a few minutes (mosaic_it.cli.entry)."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from mosaic_it.cli import GC_THRESHOLDS

REPORT = ("import atexit, gc; "
          "atexit.register(lambda: print('gc', gc.get_threshold(), gc.get_freeze_count() > 0)); "
          "from mosaic_it.cli import entry; entry()")


def test_the_console_script_is_entry():
    (script,) = entry_points(group="console_scripts", name="mosaic-it")
    assert script.value == "mosaic_it.cli:entry"


def test_entry_raises_the_collection_threshold_freezes_before_exit_and_keeps_the_exit_code(tmp_path):
    ok = subprocess.run([sys.executable, "-c", REPORT, "--help"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "validate" in ok.stdout
    assert ok.stdout.splitlines()[-1] == f"gc {GC_THRESHOLDS} True"
    bad = subprocess.run([sys.executable, "-c", REPORT, "train", "--data", str(tmp_path / "missing.jsonl")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and "not found" in bad.stderr and "Traceback" not in bad.stderr
    assert bad.stdout.splitlines()[-1] == f"gc {GC_THRESHOLDS} True"

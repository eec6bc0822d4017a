#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -c "import pytest, hypothesis, xdist" 2>/dev/null || bash scripts/venv_install.sh -e '.[dev]'
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
# setup.sh installs without byte-compiling; with PYTHONDONTWRITEBYTECODE set as well, no process
# would ever cache bytecode and every process the suite starts (CLI stages, DVC, launchers) compiles
# torch, transformers and the rest from source again (7.0 s of CPU per import instead of 3.0 s).
unset PYTHONDONTWRITEBYTECODE
# Two workers: most of the suite waits on stage subprocesses, servers and launchers, so one
# process leaves a core idle. Each worker computes on one torch thread and the tests sharing a
# session server run on one worker (tests/conftest.py). `-n 0` runs it in one process.
exec .venv/bin/python -m pytest -q --durations=25 -n 2 --dist loadgroup "$@"

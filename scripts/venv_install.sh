#!/usr/bin/env bash
# `pip install ARGS` into .venv, done by uv where it can be: uv resolves and installs mosaic-it's
# ~230 packages in parallel (21-26 s where pip 26 took 47 s; 2 cores, fresh caches). uv reads none
# of pip's configuration, so uv_env.py hands it pip's indexes, wheel folders and constraints;
# pip does the install where that fails. Neither byte-compiles every package (about 100 s on 2
# cores): setup.sh compiles the modules the pipeline imports.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=uv==0.13.9
venv_pip() {  # setup.sh makes the venv without pip (ensurepip takes 6 s); bring it in on demand
  .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip -q
}
install_uv() {
  # The base interpreter's pip can install into the venv (pip >= 22.3: --python); else the venv's own.
  base=$(sed -n 's/^executable = //p' .venv/pyvenv.cfg)
  { [ -n "$base" ] && "$base" -m pip --python .venv/bin/python install -q "$UV" 2>/dev/null; } \
    || { venv_pip && .venv/bin/python -m pip install -q "$UV"; }
}
if { [ -x .venv/bin/uv ] || install_uv; } \
    && uv_exports=$(.venv/bin/python scripts/uv_env.py) \
    && (eval "$uv_exports" && .venv/bin/uv pip install -q --python .venv/bin/python "$@"); then
  exit 0
fi
echo "venv_install.sh: installing with pip instead of uv" >&2
venv_pip
# pip 26 resolves mosaic-it's set in 43 s where the venv's bundled pip (23.2.1 with 3.11.7) took 99 s.
.venv/bin/python -m pip install -q "pip>=26"
.venv/bin/python -m pip install -q --no-compile "$@"

#!/usr/bin/env bash
# Install benchbench and its dependencies into the current Python environment.
# torch==2.13.0 is installed only when no torch is importable: a torch you already have (for
# example your own CUDA build) is never replaced, and benchbench's own requirements never name
# torch, so pip has no reason to touch it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if "$PY" -c "import torch" 2>/dev/null; then
    echo "install: keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
    echo "install: no torch found, installing torch==2.13.0"
    "$PY" -m pip install "torch==2.13.0"
fi
"$PY" -m pip install -e ".${1:-}"
# make the new `bench` entry point visible to shells that resolve commands through pyenv shims
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
command -v bench >/dev/null 2>&1 || echo "install: 'bench' is not on PATH; use: $PY -m benchbench ..."

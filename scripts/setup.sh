#!/usr/bin/env bash
# Create .venv with boxloss and its pinned dependencies (idempotent; CPU-only machines welcome).
#   bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch/torchvision pinned to releases that exist as CPU-capable wheels for Python 3.11 (and on this project's
# machines lie on local disk); the rest from pyproject.toml. --no-compile: pip would byte-compile every module of
# the 6.6 GB environment (torch, ray, onnx, ...); Python compiles the few thousand a run imports as it first loads
# them (a fresh set-up took 64 s instead of 82 s; the first import of torch and ultralytics 0.4 s more).
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check --no-compile)
"${PIP[@]}" "torch==2.14.1" "torchvision==0.29.1"
"${PIP[@]}" -e ".[test,ray]"

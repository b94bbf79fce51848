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
# machines lie on local disk); the rest from pyproject.toml.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,ray]"

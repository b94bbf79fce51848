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
# machines lie on local disk); the rest from pyproject.toml. pip byte-compiles what it installs (about 18 s of a
# fresh set-up): where PYTHONDONTWRITEBYTECODE is set, as on this project's machines, Python never writes the .pyc
# files it compiles, so without pip's every process of the test suite compiled torch and ultralytics again (a
# fresh-clone CI run took 20.5 min instead of 12.6).
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" "torch==2.14.1" "torchvision==0.29.1"
"${PIP[@]}" -e ".[test,ray]"

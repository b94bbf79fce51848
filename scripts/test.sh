#!/usr/bin/env bash
# The README's test command: set up .venv on a fresh machine (if needed) and run the whole test suite.
#   bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"

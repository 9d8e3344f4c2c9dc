#!/usr/bin/env bash
# Run the test suite: sets up ./.venv first (idempotent, seconds when already done), then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k contract
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"

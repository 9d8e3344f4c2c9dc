#!/usr/bin/env bash
# Set up (idempotent) and run one research cycle in-process: offline designer, Lightning training,
# vectorbt backtest, offline assessor. Options go to `stratlab cycle`, e.g. --seed 7 --symbol SPX.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/stratlab cycle "$@"

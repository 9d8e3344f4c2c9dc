#!/usr/bin/env bash
# Set up Strategy Lab in ./.venv: torch (CPU build) first, then the locked dependency set, then the project.
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

export UV_COMPILE_BYTECODE=1          # this machine sets PYTHONDONTWRITEBYTECODE; bytecode cuts imports 3x
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

if ! command -v uv >/dev/null; then
  echo "setup: installing uv" >&2
  "$PY" -m pip install --quiet uv
fi

# pip's config may name a local wheel folder holding the CPU build of torch; uv ignores pip's config.
find_links=$("$PY" -m pip config get global.find-links 2>/dev/null || true)
fl_args=()
[ -n "$find_links" ] && fl_args=(--find-links "$find_links")

[ -x .venv/bin/python ] || uv venv --quiet -p "$PY" .venv

# torch first: any other spec than 2.13.0 pulls several GB of CUDA packages.
uv pip install --quiet -p .venv "${fl_args[@]}" "torch==2.13.0"
grep -v '^torch==' requirements.lock > .venv/requirements.notorch.txt
uv pip install --quiet -p .venv "${fl_args[@]}" -r .venv/requirements.notorch.txt
uv pip install --quiet -p .venv --no-deps -e .

# The Pine toolchain for the export parity tests, in its own environment (see requirements-pine.lock).
[ -x .venv-pine/bin/python ] || uv venv --quiet -p "$PY" .venv-pine
uv pip install --quiet -p .venv-pine -r requirements-pine.lock

echo "setup: ready ($(.venv/bin/python -c 'import prefect, vectorbt, torch; print("prefect", prefect.__version__, "vectorbt", vectorbt.__version__, "torch", torch.__version__)'))"

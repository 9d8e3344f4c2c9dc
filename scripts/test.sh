#!/usr/bin/env bash
# Run the test suite: sets up ./.venv first (idempotent, seconds when already done), then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k contract
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Prefect UI test drives Debian's Chromium; install it where we may (it is skipped, with the reason,
# where it cannot be installed).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing chromium and chromium-driver (Debian) for the UI test" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
      >/dev/null 2>&1 || echo "test: could not install chromium; the UI test will be skipped" >&2
  fi
fi
# The C# export tests compile with Debian's mono-mcs and run the cBots under mono (skipped, with the reason,
# where they cannot be installed).
if ! command -v mcs >/dev/null || ! command -v mono >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing mono-mcs and mono-runtime (Debian) for the C# export tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mono-mcs mono-runtime) \
      >/dev/null 2>&1 || echo "test: could not install mono-mcs; the C# export tests will be skipped" >&2
  fi
fi
# The observability tests scrape the metrics exporter with Debian's prometheus (skipped, with the reason,
# where it cannot be installed).
if ! command -v prometheus >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing prometheus (Debian) for the observability tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
      >/dev/null 2>&1 || echo "test: could not install prometheus; the Prometheus tests will be skipped" >&2
  fi
fi
# The fleet and ledger tests start Debian's PostgreSQL in a temporary data directory (skipped, with the
# reason, where it cannot be installed).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing postgresql (Debian) for the fleet and ledger tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql) \
      >/dev/null 2>&1 || echo "test: could not install postgresql; the PostgreSQL tests will be skipped" >&2
  fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"

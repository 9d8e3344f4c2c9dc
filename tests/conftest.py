"""Shared fixtures: a real Prefect API (temporary SQLite database) for the whole session, and a private
strategies folder per test so no test writes into the repository."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from stratlab.cli import prepare_prefect_env

prepare_prefect_env()  # the CLI's defaults for Prefect, before Prefect is imported
# Offline by default: no test may reach the real API or spend from the user's ledger. Tests of Claude
# set a key and point the SDK at tests/fake_anthropic.py themselves.
for _name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
    os.environ.pop(_name, None)
_scratch = Path(tempfile.mkdtemp(prefix="stratlab-tests-"))
os.environ["STRATLAB_LEDGER"] = str(_scratch / "ledger.sqlite3")
# cached step results of this session
os.environ["STRATLAB_STEP_RESULTS_DIR"] = str(_scratch / "step-results")
os.environ["STRATLAB_HOME"] = str(_scratch / "home")  # the results key, stack.json: never the user's

REPO = Path(__file__).resolve().parents[1]
STRATEGIES = REPO / "strategies"


@pytest.fixture(scope="session")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def postgres():
    """Debian's PostgreSQL in a temporary data directory on a free 127.0.0.1 port, for the session."""
    from tests.postgres import LocalPostgres, postgres_binaries

    if postgres_binaries() is None:
        pytest.skip("PostgreSQL is not installed (scripts/test.sh installs Debian's postgresql as root)")
    with LocalPostgres() as server:
        yield server


@pytest.fixture
def strategies_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "strategies"
    home.mkdir()
    monkeypatch.setenv("STRATLAB_STRATEGIES_DIR", str(home))
    return home


def tree(path: Path) -> list[str]:
    """Every file and folder under path, relative, sorted: what a person would see with `find`."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def period_metrics(**fields):
    """A BacktestMetrics of one period with plausible values; pass the fields a test is about."""
    from tasks.backtest import BacktestMetrics

    values = {
        "start": "2017-01-02",
        "end": "2017-09-29",
        "bars": 4000,
        "total_return": 0.05,
        "benchmark_return": 0.02,
        "sharpe": 0.5,
        "sortino": 0.5,
        "max_drawdown": 0.1,
        "win_rate": 0.5,
        "trades": 12,
        "profit_factor": 1.2,
        "gross_profit": 600.0,
        "gross_loss": 500.0,
        "open_position": None,
        "exposure": 0.3,
        "fees_paid": 1.0,
        "final_value": 10_500.0,
    }
    return BacktestMetrics(**{**values, **fields})


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = Path(
    os.environ.get("STRATLAB_SCREENSHOTS") or Path(tempfile.gettempdir()) / "stratlab-screenshots"
)


@pytest.fixture
def browser():
    """Debian's chromium, headless, through selenium (tests that use it skip without CHROMIUM)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()

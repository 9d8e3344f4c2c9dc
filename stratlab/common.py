"""What every command group shares: the consoles, exit codes, errors and Prefect's environment."""

from __future__ import annotations

import json
import os
import sys

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)

EXIT_COMPLETED, EXIT_ERROR, EXIT_GATE = 0, 1, 2


def prepare_prefect_env() -> None:
    """Defaults for Prefect on a small, offline machine; must run before Prefect is imported.
    The ephemeral API needs 12-17 s to start here; run logs go to the UI/API, not the terminal, where
    our own progress is shown."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    # Concurrency leases in files under $PREFECT_HOME, not in one server process's memory: every
    # in-process run's ephemeral API then sees the others' leases, and a killed run's expired slot can
    # be freed (flows/guard.py), as can one held across a restart of `stratlab up`'s server.
    os.environ.setdefault(
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE", "prefect.server.concurrency.lease_storage.filesystem"
    )
    # In-process runs (`stratlab cycle` pointed at a server) beat as often as the workers' runs. Prefect's
    # default is every 180 s, longer than the 150 s after which the server's crash automation
    # (deployments/stack.py) marks a silent run Crashed: a live long cycle would be marked Crashed.
    from deployments.stack import heartbeat_seconds

    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(heartbeat_seconds()))


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the Exit to raise (status 1): no traceback for bad input."""
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_ERROR)


def use_server() -> str:
    """Point Prefect at the server `stratlab up` started (or $PREFECT_API_URL); before importing it."""
    from deployments.stack import api_url

    api = api_url()
    if not api:
        raise fail("no Prefect server: run `stratlab up` (or set PREFECT_API_URL)")
    os.environ["PREFECT_API_URL"] = api
    prepare_prefect_env()
    return api


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")

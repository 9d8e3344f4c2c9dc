"""One research cycle at a time, everywhere: a Prefect global concurrency limit that every flow running
a cycle takes for its whole duration, whatever deployment, worker or process started it.

The deployment's own ``concurrency_limit`` (prefect.yaml) turns away a second run of the same
deployment at once; this limit also covers other deployments and in-process runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

CYCLE_LIMIT = "research-cycle"
CAMPAIGN_LIMIT = "campaign"  # one campaign at a time, across every deployment, worker and process
LEASE_SECONDS = 60


def ensure_limit(name: str) -> None:
    """Create a global concurrency limit of 1 slot if the API does not have it yet; idempotent."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


def ensure_cycle_limit() -> None:
    ensure_limit(CYCLE_LIMIT)


def clear_abandoned_stages() -> list[str]:
    """Remove staging folders whose owning process is provably gone (a killed cycle on this host).

    A stage is kept whenever that cannot be proved: its owner runs, runs on another host, or left no
    readable owner record. Two Prefect homes may share one strategies folder, so what this API knows
    about runs says nothing about another home's live cycle.
    """
    from tasks.storage import discard_stage, stage_owner_gone, staged_runs

    removed = []
    for run_id in staged_runs():
        if stage_owner_gone(run_id):
            discard_stage(run_id)
            removed.append(run_id)
    return removed


@contextmanager
def one_cycle_at_a_time() -> Iterator[None]:
    """Hold the single cycle slot; waits while another cycle holds it. On cancellation the worker sends
    SIGTERM, and the slot is released as the signal unwinds this block."""
    ensure_cycle_limit()
    # The slot is a lease the holder keeps renewing: one whose process is killed frees it within a minute.
    with concurrency(CYCLE_LIMIT, occupy=1, strict=True, lease_duration=LEASE_SECONDS):
        clear_abandoned_stages()
        yield

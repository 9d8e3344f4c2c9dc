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


def ensure_cycle_limit() -> None:
    """Create the limit (1 slot) if the API does not have it yet; idempotent."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(CYCLE_LIMIT)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=CYCLE_LIMIT, limit=1)
                )


@contextmanager
def one_cycle_at_a_time() -> Iterator[None]:
    """Hold the single cycle slot; waits while another cycle holds it. On cancellation the worker sends
    SIGTERM, and the slot is released as the signal unwinds this block."""
    ensure_cycle_limit()
    with concurrency(CYCLE_LIMIT, occupy=1, strict=True):
        yield

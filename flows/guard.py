"""One research cycle at a time, everywhere: a Prefect global concurrency limit that every flow running
a cycle takes for its whole duration, whatever deployment, worker or process started it.

The deployment's own ``concurrency_limit`` (prefect.yaml) turns away a second run of the same
deployment at once; this limit also covers other deployments and in-process runs.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import get_current_settings

CYCLE_LIMIT = "research-cycle"
CAMPAIGN_LIMIT = "campaign"  # one campaign at a time, across every deployment, worker and process
LEASE_SECONDS = 60  # Prefect's shortest lease: a killed holder's slot is free a minute later
RECLAIM_EVERY_S = 15  # how often a process waiting on the ephemeral API looks for abandoned slots
FILE_LEASES = "prefect.server.concurrency.lease_storage.filesystem"

log = logging.getLogger(__name__)


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


def on_ephemeral_api() -> bool:
    """Whether this process talks to the API Prefect starts for it (no ``PREFECT_API_URL``)."""
    return not get_current_settings().api.url


def reclaim_abandoned_slots() -> list[str]:
    """On the ephemeral API, free the slots whose lease nobody renews any more; returns their lease ids.

    A slot is a lease its holder renews while it lives. A server (`stratlab up`) runs Prefect's
    repossessor, which frees expired leases; the ephemeral API runs no such service, so without this a
    `stratlab cycle` killed with SIGKILL (or a lost machine) would hold its slot for ever and every later
    cycle would wait. The leases live in files under ``$PREFECT_HOME`` (``prepare_prefect_env`` chooses
    Prefect's file lease storage), which every process of that home reads; a file lock keeps two
    processes from freeing the same lease twice. The run that held an expired lease is marked Crashed.
    """
    settings = get_current_settings()
    if settings.api.url or settings.server.concurrency.lease_storage != FILE_LEASES:
        return []
    from prefect.server.concurrency.lease_storage.filesystem import ConcurrencyLeaseStorage
    from prefect.utilities.asyncutils import run_coro_as_sync

    storage = ConcurrencyLeaseStorage()
    storage.storage_path.mkdir(parents=True, exist_ok=True)
    freed = []
    with open(storage.storage_path / ".stratlab-reclaim.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when this process dies
        for lease_id in run_coro_as_sync(storage.read_expired_lease_ids()) or []:
            lease = run_coro_as_sync(storage.read_lease(lease_id))
            if lease is None:  # an index entry without its file: only the entry to drop
                run_coro_as_sync(storage.revoke_lease(lease_id))
                continue
            with get_client(sync_client=True) as client:
                client.release_concurrency_slots_with_lease(lease_id)  # decrements and revokes
            holder = lease.metadata.holder if lease.metadata else None
            if holder is not None and holder.type == "flow_run":
                _mark_crashed(holder.id)
            log.warning("freed a concurrency slot whose holder stopped renewing it (lease %s)", lease_id)
            freed.append(str(lease_id))
    return freed


def _mark_crashed(run_id: UUID) -> None:
    """A run whose slot expired is dead; on the ephemeral API no automation would ever say so."""
    from prefect.states import Crashed

    with get_client(sync_client=True) as client, suppress(ObjectNotFound):
        run = client.read_flow_run(run_id)
        if run.state is not None and not run.state.is_final():
            message = "its process stopped renewing its concurrency slot (killed, or its machine lost)"
            client.set_flow_run_state(run_id, Crashed(message=message), force=True)


def _holder() -> ConcurrencyLeaseHolder | None:
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return ConcurrencyLeaseHolder(type="flow_run", id=UUID(str(run_id))) if run_id else None


@contextmanager
def hold_slot(name: str) -> Iterator[None]:
    """Hold the single slot of the global limit ``name``; waits while another process holds it.

    The slot is a lease the holder keeps renewing: one whose process is killed frees it within a minute
    (on a server by its repossessor; on the ephemeral API a waiting process frees it, see
    `reclaim_abandoned_slots`)."""
    ensure_limit(name)
    slot = concurrency(name, occupy=1, strict=True, lease_duration=LEASE_SECONDS, holder=_holder())
    if not on_ephemeral_api():
        with slot:
            yield
        return
    reclaim_abandoned_slots()
    acquired = threading.Event()
    watcher = threading.Thread(target=_reclaim_until, args=(acquired,), name="slot-reclaim", daemon=True)
    watcher.start()
    try:
        with slot:
            acquired.set()
            yield
    finally:
        acquired.set()


def _reclaim_until(acquired: threading.Event) -> None:
    """While this process waits for a slot, free abandoned ones every RECLAIM_EVERY_S seconds."""
    while not acquired.wait(RECLAIM_EVERY_S):
        try:
            reclaim_abandoned_slots()
        except Exception:  # the wait goes on; the next pass tries again
            log.exception("could not look for abandoned concurrency slots")


@contextmanager
def one_cycle_at_a_time() -> Iterator[None]:
    """Hold the single cycle slot; waits while another cycle holds it. On cancellation the worker sends
    SIGTERM, and the slot is released as the signal unwinds this block."""
    with hold_slot(CYCLE_LIMIT):
        clear_abandoned_stages()
        yield

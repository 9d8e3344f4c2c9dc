"""A suspended run must not look like a crashed one.

The crash detection that `stratlab up` installs marks a run Crashed when its heartbeats stop without an
end. A suspended run (a paused campaign) also stops them, and Prefect's heartbeat thread can send one
more after the Suspended event, while the flow runs on to its next task boundary: that heartbeat would
get the paused run marked Crashed a few heartbeat periods later. So the flow's process, when it is
suspended, starts this module detached: once the process is gone (a heartbeat period and a margin later) it emits
``stratlab.flow-run.suspended`` for the run, if the run is still suspended, and the crash detection
counts that event as an end.

    python -m deployments.suspension RUN_ID SECONDS
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from uuid import UUID

SUSPENDED_EVENT = "stratlab.flow-run.suspended"


def note_suspension(run_id: str) -> None:
    """From the suspended flow's process: start the note, detached, so it outlives this process."""
    from prefect.settings import get_current_settings

    wait = (get_current_settings().flows.heartbeat_frequency or 30) + 10
    subprocess.Popen(
        [sys.executable, "-m", "deployments.suspension", run_id, str(wait)],
        start_new_session=True,  # the worker reaps the flow's process group, not this
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _emit(run_id: UUID) -> bool:
    from prefect import get_client
    from prefect.events import Event
    from prefect.events.clients import get_events_client

    async with get_client() as client:
        run = await client.read_flow_run(run_id)
    if run.state is None or not run.state.is_paused():
        return False  # resumed (or ended) meanwhile: its own events say so
    async with get_events_client() as events:
        await events.emit(
            Event(event=SUSPENDED_EVENT, resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"})
        )
    return True


def main(argv: list[str]) -> int:
    run_id, wait = UUID(argv[0]), float(argv[1])
    time.sleep(wait)
    return 0 if asyncio.run(_emit(run_id)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

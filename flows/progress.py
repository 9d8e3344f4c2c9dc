"""Phase reporting for a running cycle: the run's state message and log, a Prefect progress artifact,
and the CLI.

The CLI listens on the ``stratlab.progress`` logger, so a cycle run in-process shows its phases as
they happen without the CLI knowing anything about the flow's insides.
"""

from __future__ import annotations

import logging
import time

from prefect import get_client, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run
from prefect.states import Running

PHASES = ("designing", "features", "training", "backtesting", "assessing", "saving")
progress_log = logging.getLogger("stratlab.progress")


class PhaseReporter:
    """Tracks the current phase and how long each took; `enter` moves to the next one."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.strategy_id: str | None = None  # known once designed; shown in the state message
        self.timings: dict[str, float] = {}
        self._since = time.monotonic()
        self._artifact = create_progress_artifact(progress=0.0, description="Research cycle progress")

    def enter(self, phase: str, detail: str = "") -> None:
        self._close_phase()
        self.phase = phase
        step = PHASES.index(phase)
        self._emit(f"[{step + 1}/{len(PHASES)}] {phase}" + (f": {detail}" if detail else ""))
        update_progress_artifact(self._artifact, progress=100.0 * step / len(PHASES))
        self._show_in_state(f"{phase} | {self.strategy_id or '-'} | {detail}")

    @staticmethod
    def _show_in_state(message: str) -> None:
        """The run stays Running; its message names the phase, so the UI and `stratlab status` show it.
        (Forcing Running -> Running keeps the run's start time.)"""
        run_id = flow_run.get_id()
        if run_id:
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(run_id, Running(message=message[:300]), force=True)

    def note(self, message: str) -> None:
        self._emit(f"      {message}")

    def seconds(self) -> dict[str, float]:
        """Seconds per phase so far, the current one included."""
        running = {self.phase: round(time.monotonic() - self._since, 3)} if self.phase else {}
        return {**self.timings, **running}

    def finish(self) -> None:
        self._close_phase()
        self.phase = None
        update_progress_artifact(self._artifact, progress=100.0)

    def _close_phase(self) -> None:
        now = time.monotonic()
        if self.phase is not None:
            self.timings[self.phase] = round(now - self._since, 3)
        self._since = now

    @staticmethod
    def _emit(message: str) -> None:
        get_run_logger().info(message)
        progress_log.info(message)

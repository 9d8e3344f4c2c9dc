"""Phase reporting for a running cycle: the run's state message and log, a Prefect progress artifact,
the run's labels, and the CLI.

The CLI listens on the ``stratlab.progress`` logger, so a cycle run in-process shows its phases as
they happen without the CLI knowing anything about the flow's insides.

The run's labels (``stratlab.*``) keep what the metrics exporter (``tasks/observe/metrics.py``) counts,
in Prefect's database where every run already is, so that it reads one list of runs and loses nothing
when it restarts: the phase the run is in (the last one for a run that crashed or was cancelled), each
gate criterion's result, the seconds of each phase, and how a failed run failed.
"""

from __future__ import annotations

import logging
import time

from prefect import get_client, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run
from prefect.states import Running

from tasks.gates import GateResult

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
        self._label({"stratlab.phase": phase})

    def gate(self, result: GateResult) -> None:
        """Record each criterion the gate judged, as ``stratlab.gate.<gate>.<criterion>`` = passed."""
        self._label({f"stratlab.gate.{result.gate}.{name}": ok for name, ok in result.checks.items()})

    def failed(self, kind: str) -> None:
        """The run fails in the current phase: ``kind`` is 'gate' (a gate said no) or 'error'."""
        self._label({"stratlab.failed_phase": self.phase or "none", "stratlab.failure": kind})

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
        self._label({f"stratlab.seconds.{phase}": seconds for phase, seconds in self.timings.items()})

    @staticmethod
    def _label(labels: dict[str, str | bool | float]) -> None:
        """Merge ``labels`` into the run's labels (nothing outside a flow run). Metrics are not worth a
        cycle: when the API refuses, the run goes on and the log says what was lost."""
        run_id = flow_run.get_id()
        if not run_id or not labels:
            return
        try:
            with get_client(sync_client=True) as client:
                client.update_flow_run_labels(run_id, labels)
        except Exception as exc:  # noqa: BLE001 - any API failure: keep the cycle, say so
            progress_log.warning("run labels not recorded (%s: %s): %s", type(exc).__name__, exc, labels)

    def _close_phase(self) -> None:
        now = time.monotonic()
        if self.phase is not None:
            self.timings[self.phase] = round(now - self._since, 3)
        self._since = now

    @staticmethod
    def _emit(message: str) -> None:
        get_run_logger().info(message)
        progress_log.info(message)

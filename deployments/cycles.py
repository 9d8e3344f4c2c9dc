"""`stratlab trigger / status / cancel`: seed 000's trigger, status and cancel, answered by Prefect's API.

Polling status reads flow runs, their state messages and nothing else: no LLM is ever called.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from deployments.stack import DEPLOYMENT

ACTIVE_TYPES = ("PENDING", "RUNNING", "CANCELLING")


class CycleRun(BaseModel):
    run_id: str
    name: str
    state: str  # Prefect's state name: Running, Completed, Failed, Cancelled, Crashed...
    phase: str | None  # while running: designing, features, training, ...
    strategy_id: str | None
    message: str | None
    started: str | None
    elapsed_s: float | None


class TriggerAnswer(BaseModel):
    triggered: bool
    run_id: str | None = None
    reason: Literal["cycle_in_progress", "budget_exhausted"] | None = None
    active_run_id: str | None = None
    detail: str | None = None


def _runs(client, states: tuple[str, ...] | None = None, limit: int = 20):
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    run_filter = None
    if states:
        run_filter = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(states))))
    return client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=["research_cycle"])),
        flow_run_filter=run_filter,
        sort=FlowRunSort.START_TIME_DESC,
        limit=limit,
    )


def _describe(run) -> CycleRun:
    message = run.state.message if run.state else None
    running = run.state is not None and run.state.type.value == "RUNNING"
    parts = (message or "").split(" | ")
    started = run.start_time
    elapsed = (
        (datetime.now(UTC) - started).total_seconds()
        if started and running
        else run.total_run_time.total_seconds()
    )
    return CycleRun(
        run_id=str(run.id),
        name=run.name,
        state=run.state.name if run.state else "Unknown",
        phase=parts[0] if running and message else None,
        strategy_id=parts[1] if running and len(parts) > 1 and parts[1] != "-" else None,
        message=message,
        started=started.isoformat() if started else None,
        elapsed_s=round(elapsed, 1),
    )


def _active(client) -> list:
    """Running or about to run: pending, running, cancelling, and scheduled runs already due (a Run
    press or a trigger waiting for the worker). Future schedule slots are not activity."""
    now = datetime.now(UTC)
    due = [r for r in _runs(client, ("SCHEDULED",)) if r.expected_start_time and r.expected_start_time <= now]
    return list(_runs(client, ACTIVE_TYPES)) + due


def active_cycles() -> list[CycleRun]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return [_describe(r) for r in _active(client)]


def status(last: int = 10) -> dict:
    """The active cycle, if any, and the last cycles with their outcomes and reasons."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        active = [_describe(r) for r in _active(client)]
        recent = [_describe(r) for r in _runs(client, ("COMPLETED", "FAILED", "CANCELLED", "CRASHED"), last)]
    return {"active": active[0].model_dump() if active else None, "last": [r.model_dump() for r in recent]}


def _budget_refusal(params: dict) -> str | None:
    """With Claude in play, refuse a cycle whose first request would not fit today's budget."""
    from tasks.llm.session import resolve_who

    uses_claude = any(resolve_who(params.get(k, "auto")) == "claude" for k in ("designer", "assessor"))
    if not uses_claude:
        return None
    from tasks.llm.budget import BudgetLedger
    from tasks.llm.pricing import DEFAULT_MODEL
    from tasks.llm.prompts import design_brief, design_request
    from tasks.llm.session import request_worst_case

    first = design_request([{"role": "user", "content": design_brief(None, None)}])
    needed = request_worst_case(first, params.get("model", DEFAULT_MODEL))
    left = BudgetLedger().status().remaining_usd
    return (
        None
        if left >= needed
        else f"${left:.4f} left today; a cycle's first request needs up to ${needed:.4f}"
    )


def trigger(params: dict | None = None) -> TriggerAnswer:
    """Start a cycle through the deployment, unless one is in progress or the budget is spent."""
    from prefect.deployments import run_deployment

    params = params or {}
    active = active_cycles()
    if active:
        return TriggerAnswer(
            triggered=False,
            reason="cycle_in_progress",
            active_run_id=active[0].run_id,
            detail=f"{active[0].name} is {active[0].state} ({active[0].message or ''})",
        )
    refusal = _budget_refusal(params) if os.environ.get("ANTHROPIC_API_KEY") else None
    if refusal:
        return TriggerAnswer(triggered=False, reason="budget_exhausted", detail=refusal)
    run = run_deployment(DEPLOYMENT, parameters={"params": params}, timeout=0, as_subflow=False)
    return TriggerAnswer(triggered=True, run_id=str(run.id))


def cancel(run_id: str | None = None) -> dict:
    """Ask Prefect to cancel a run (the active cycle by default); the worker stops its process."""
    from uuid import UUID

    from prefect import get_client
    from prefect.states import Cancelling

    if run_id is None:
        active = active_cycles()
        if not active:
            return {"cancelled": False, "reason": "no_active_cycle"}
        run_id = active[0].run_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(run_id))
        if run.state and run.state.is_final():
            return {"cancelled": False, "run_id": run_id, "reason": f"already {run.state.name}"}
        client.set_flow_run_state(UUID(run_id), Cancelling(message="cancelled from stratlab"), force=True)
    return {"cancelled": True, "run_id": run_id}

"""Operating campaigns through Prefect: start, status, pause, resume and cancel, by the API alone.

Pause is Prefect's suspension of the campaign's deployment run with no timeout (a suspension with a
timeout is marked Failed when it expires): the flow stops at its next task boundary and its process
ends. Resume starts it again; it re-runs from the top and reads its finished iterations back. A run
whose suspension expired, or that failed or crashed, is resumed by scheduling the same flow run again,
which keeps its campaign id (derived from the run) and its cached steps.
"""

from __future__ import annotations

import json
from uuid import UUID

from deployments.stack import CAMPAIGN_DEPLOYMENT
from tasks.campaign.record import CampaignRecord
from tasks.campaign.report import campaign_dir, campaigns_dir


def start(request: dict, campaign_id: str) -> dict:
    """Start a campaign as a run of the `campaign` deployment; returns its run id."""
    from prefect.deployments import run_deployment

    run = run_deployment(
        CAMPAIGN_DEPLOYMENT,
        parameters={"request": request, "campaign_id": campaign_id},
        timeout=0,
        as_subflow=False,
    )
    return {"started": True, "campaign_id": campaign_id, "run_id": str(run.id)}


def records() -> list[CampaignRecord]:
    """Every campaign with a record under reports/campaigns/, newest first."""
    out = []
    folder = campaigns_dir()
    for path in sorted(folder.glob("*/campaign.json")) if folder.is_dir() else []:
        try:
            out.append(CampaignRecord.model_validate(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue  # a record being replaced: the next listing shows it
    return sorted(out, key=lambda r: r.transitions[0].at if r.transitions else "", reverse=True)


def load(campaign_id: str) -> CampaignRecord:
    folder = campaign_dir(campaign_id)
    if not (folder / "campaign.json").is_file():
        raise LookupError(f"campaign {campaign_id}: no record in {folder}")
    return CampaignRecord.load(folder)


def run_state(run_id: str | None) -> dict | None:
    """The Prefect run of a campaign (state name, message), or None without one or without a server."""
    if not run_id:
        return None
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(run_id))
    except Exception:  # no server, or a run of another server: the record is all there is
        return None
    return {
        "run_id": run_id,
        "state": run.state.name if run.state else None,
        "message": run.state.message if run.state else None,
    }


def pause(campaign_id: str) -> dict:
    """Suspend the campaign's run with no timeout; its process ends at the next task boundary."""
    from prefect.flow_runs import suspend_flow_run

    record = load(campaign_id)
    state = run_state(record.flow_run_id)
    if state is None or state["state"] not in ("Running", "Pending", "Scheduled"):
        return {"paused": False, "campaign_id": campaign_id, "reason": f"run is {state and state['state']}"}
    suspend_flow_run(flow_run_id=UUID(record.flow_run_id), timeout=None)
    return {"paused": True, "campaign_id": campaign_id, "run_id": record.flow_run_id}


def resume(campaign_id: str) -> dict:
    """Resume a suspended run; schedule again a run that failed, crashed or whose suspension expired."""
    from prefect import get_client
    from prefect.flow_runs import resume_flow_run
    from prefect.states import Scheduled

    record = load(campaign_id)
    state = run_state(record.flow_run_id)
    if state is None:
        return {
            "resumed": False,
            "campaign_id": campaign_id,
            "reason": "no run of this campaign on this server",
        }
    run_id = UUID(record.flow_run_id)
    if state["state"] in ("Suspended", "Paused"):
        resume_flow_run(run_id)
    elif state["state"] in ("Failed", "Crashed", "Cancelled") and record.state != "completed":
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run_id, Scheduled(message="resumed from stratlab"), force=True)
    else:
        return {"resumed": False, "campaign_id": campaign_id, "reason": f"run is {state['state']}"}
    return {"resumed": True, "campaign_id": campaign_id, "run_id": record.flow_run_id}


def cancel(campaign_id: str) -> dict:
    """Cancel the campaign's run; the worker stops its process. Finished iterations stay on disk."""
    from prefect import get_client
    from prefect.states import Cancelling

    record = load(campaign_id)
    state = run_state(record.flow_run_id)
    if state is None or state["state"] in ("Completed", "Failed", "Cancelled", "Crashed"):
        return {
            "cancelled": False,
            "campaign_id": campaign_id,
            "reason": f"run is {state and state['state']}",
        }
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            UUID(record.flow_run_id), Cancelling(message="cancelled from stratlab"), force=True
        )
    return {"cancelled": True, "campaign_id": campaign_id, "run_id": record.flow_run_id}

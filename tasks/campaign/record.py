"""A campaign's persistent record (``campaign.json``) and seed 003's state machine.

Every transition is appended with its UTC timestamp, a reason code and the iteration, and the whole
record is rewritten atomically, so a crash leaves the last complete record. ``paused`` is entered from
any running state and left for the state the campaign was in.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from strategy_contract.io import atomic_write_json, strict_json

STATES = (
    "queued",
    "brief_generated",
    "code_generated",
    "campaign_running",
    "campaign_evaluated",
    "refinement_planned",
    "completed",
    "failed",
    "paused",
)
RUNNING = (
    "brief_generated",
    "code_generated",
    "campaign_running",
    "campaign_evaluated",
    "refinement_planned",
)
NEXT = {
    "queued": {"brief_generated", "failed"},
    "brief_generated": {"code_generated", "failed"},
    "code_generated": {"campaign_running", "failed"},
    "campaign_running": {"campaign_evaluated", "failed"},
    "campaign_evaluated": {"refinement_planned", "completed", "failed"},
    "refinement_planned": {"campaign_running", "failed"},
    "completed": set(),
    "failed": set(),
}
FINAL = ("completed", "failed")


class TransitionError(RuntimeError):
    """A state change the state machine does not allow."""


class Transition(BaseModel):
    state: str
    at: str
    reason: str
    iteration: int = 0


class CampaignRecord(BaseModel):
    """What ``campaign.json`` holds. Filled in as the campaign goes; the verdict comes last."""

    campaign_id: str
    flow_run_id: str | None = None
    request: dict
    state: str = "queued"
    transitions: list[Transition] = Field(default_factory=list)
    seals: list[dict] = Field(default_factory=list)
    family: str | None = None
    iterations: list[dict] = Field(default_factory=list, description="Summary of each finished iteration.")
    trials: int = 0
    stop_reason: str | None = None
    stop_detail: str | None = None  # what the stop reason's code does not say (which limit, how much)
    verdict: str | None = None
    rationale: list[dict] = Field(default_factory=list)
    best: dict | None = None
    holdout: dict | None = None
    overfitting: dict | None = None
    exports: dict | None = Field(
        None,
        description="A promoted candidate's exports: folder, and per target its file or its refusal "
        "(or the error that stopped the export).",
    )
    costs: dict = Field(default_factory=lambda: {"usd": 0.0, "llm_calls": 0})
    provenance: dict = Field(default_factory=dict)
    error: str | None = None

    def move(self, state: str, reason: str, iteration: int = 0) -> Transition:
        """Enter ``state`` (checked against the state machine) and log the transition."""
        if state not in STATES:
            raise TransitionError(f"unknown state '{state}'")
        current = self.resumed_state() if self.state == "paused" else self.state
        if state == "paused":
            if current not in RUNNING:
                raise TransitionError(f"cannot pause a campaign that is {current}")
        elif state != current and state not in NEXT[current]:
            raise TransitionError(f"{current} -> {state} is not a transition of the campaign state machine")
        self.state = state
        step = Transition(state=state, at=datetime.now(UTC).isoformat(), reason=reason, iteration=iteration)
        self.transitions.append(step)
        return step

    def resumed_state(self) -> str:
        """The state before the last pause (what a resumed campaign continues from)."""
        for step in reversed(self.transitions):
            if step.state != "paused":
                return step.state
        return "queued"

    def save(self, folder: Path) -> Path:
        path = folder / "campaign.json"
        atomic_write_json(path, strict_json(self.model_dump(mode="json")))
        return path

    @classmethod
    def load(cls, folder: Path) -> CampaignRecord:
        return cls.model_validate(json.loads((folder / "campaign.json").read_text(encoding="utf-8")))

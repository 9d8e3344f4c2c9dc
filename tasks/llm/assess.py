"""Claude assesses a finished backtest through one forced tool call, validated like any other input."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field, ValidationError

from strategy_contract import Strategy
from tasks.assess import Assessment, Verdict, headline_metrics
from tasks.backtest import BacktestReport
from tasks.llm.prompts import ASSESS_MAX_TOKENS, assess_request
from tasks.llm.session import ClaudeSession, LLMFailure
from tasks.train import TrainingMetrics


class SubmittedAssessment(BaseModel):
    """What the model must send to submit_assessment."""

    verdict: Verdict
    summary: str = Field(max_length=600)
    strengths: list[str] = Field(max_length=8)
    weaknesses: list[str] = Field(max_length=8)
    suggestions: list[str] = Field(max_length=8)
    learnings: list[str] = Field(min_length=1, max_length=3)


def assessment_brief(strategy: Strategy, backtest: BacktestReport, training: TrainingMetrics | None) -> str:
    """The facts the assessor judges, as compact JSON (no trade list, no loss curve). Only the selection
    part is shown: the assessment's learnings feed later designs, so the held-out part stays out."""
    facts = {
        "contract": strategy.model_dump(mode="json", exclude={"optimization_space", "gates"}),
        "training": training.model_dump(mode="json", exclude={"loss_curve", "test_accuracy"})
        if training
        else None,
        "backtest": {
            "part": backtest.selection_part,
            "metrics": backtest.selection.model_dump(mode="json"),
        },
    }
    return "Assess this research cycle.\n" + json.dumps(facts, separators=(",", ":"), default=str)


def assess_with_claude(
    session: ClaudeSession, strategy: Strategy, backtest: BacktestReport, training: TrainingMetrics | None
) -> Assessment:
    response = session.create("assess", **assess_request(assessment_brief(strategy, backtest, training)))
    if response.stop_reason == "refusal":
        raise LLMFailure("assess: Claude declined to assess (stop_reason: refusal)")
    if response.stop_reason == "max_tokens":
        raise LLMFailure(f"assess: the answer reached max_tokens ({ASSESS_MAX_TOKENS})")
    use = next((b for b in response.content if b.type == "tool_use" and b.name == "submit_assessment"), None)
    if use is None:
        raise LLMFailure("assess: Claude did not call submit_assessment")
    try:
        submitted = SubmittedAssessment.model_validate(use.input)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise LLMFailure(f"assess: malformed submit_assessment input: {where}: {first['msg']}") from None
    return Assessment(
        strategy_id=strategy.strategy_id,
        assessor=f"claude ({session.model})",
        metrics=headline_metrics(backtest),
        **submitted.model_dump(),
    )


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import uncached_step  # noqa: E402

assess_claude = uncached_step(assess_with_claude, "assess-claude")

"""The research cycle: design -> train -> [training gate] -> backtest -> [backtest gate] -> assess.

The flow only puts tasks in order and branches on gates. A gate that says no ends the run Failed with
the gate's reason, and its results are still kept (later designs learn from failures). An error in any
step ends the run Failed with the step and the reason, and leaves nothing in ``strategies/``.

What may choose (DESIGN.md, the research protocol): the gates, the assessment and the history that
later designs read all come from the *selection* part of the data (validation for a fitted model,
train + validation for rules). The held-out part is backtested once per cycle, recorded and shown to
the person, and read by nothing else. The operator's floors (``stratlab.toml``) apply to every contract.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from pydantic import BaseModel, Field

from flows.guard import one_cycle_at_a_time
from flows.progress import PhaseReporter
from flows.summary import summary_markdown
from strategy_contract import Strategy, load_strategy
from tasks.assess import assess, held_out_summary
from tasks.backtest import backtest
from tasks.data import Market, list_datasets, load_market_data, median_abs_return
from tasks.design import design, family_of
from tasks.features import features
from tasks.gates import check_backtest_gate, check_training_gate
from tasks.llm.assess import assess_claude
from tasks.llm.budget import BudgetExhausted, BudgetLedger
from tasks.llm.design import DesignTools, design_claude
from tasks.llm.pricing import DEFAULT_MODEL
from tasks.llm.session import ClaudeSession, LLMFailure, resolve_who
from tasks.observe.pictures import EQUITY_PNG, equity_png
from tasks.observe.traces import configure_tracing
from tasks.provenance import provenance
from tasks.settings import enforce_operator_rules, operator_settings
from tasks.splits import split_bounds
from tasks.storage import History, Stage, load_history, strategies_dir
from tasks.train import train

configure_tracing()  # before any run: Prefect's spans need this process's tracer provider

Who = Literal["auto", "local", "claude"]
DEFAULT_MARKET = ("SPX", "1d")  # the S&P 500: the best-known benchmark and 20 years of history


class CycleParams(BaseModel):
    """What a cycle runs on. Leave strategy_file empty to let the designer create a strategy."""

    strategy_file: str | None = Field(
        None, description="Contract to run (YAML path) instead of designing one."
    )
    designer: Who = Field(
        "auto", description="Who designs: claude, local (offline), or auto (claude with a key)."
    )
    assessor: Who = Field(
        "auto", description="Who assesses: claude, local (offline), or auto (claude with a key)."
    )
    model: str = Field(DEFAULT_MODEL, description="Claude model for designing and assessing.")
    symbol: str | None = Field(
        None, description="Market, e.g. EURUSD; empty: the contract's or a designer's pick."
    )
    timeframe: str | None = Field(None, description="Bar size, e.g. 1h or 1d; empty: the symbol's first.")
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Seed for design, training and anything random.")


class CycleResult(BaseModel):
    """The outcome a person, the CLI's --json and later cycles read."""

    run_id: str
    status: Literal["completed", "failed"]
    failed_phase: str | None = None
    reason: str | None = None
    strategy_id: str | None = None
    verdict: str | None = None
    metrics: dict = Field(default_factory=dict)
    artifacts: dict[str, str] = Field(default_factory=dict)
    phase_seconds: dict[str, float] = Field(default_factory=dict)
    held_out: str | None = Field(None, description="The held-out result in a sentence, for the person.")
    llm: dict = Field(default_factory=dict, description="Tokens and dollars per call and per phase.")
    duration_s: float = 0.0
    started_at: str = ""


class GateFailed(Exception):
    """A gate said no: the cycle ends Failed, with its results kept."""


@flow(name="research_cycle", log_prints=False)
def research_cycle(params: CycleParams | None = None) -> State:
    """One research cycle. Returns Completed or Failed; either carries a CycleResult."""
    with one_cycle_at_a_time():
        return _cycle(params or CycleParams())


def _cycle(params: CycleParams) -> State:
    run_id = str(flow_run.get_id() or uuid.uuid4())
    started = time.monotonic()
    result = CycleResult(
        run_id=run_id, status="failed", started_at=datetime.now(UTC).isoformat(timespec="seconds")
    )
    designer = "file" if params.strategy_file else resolve_who(params.designer)
    assessor = resolve_who(params.assessor)
    progress = PhaseReporter()
    stage = Stage(run_id=run_id)
    designed: Strategy | None = None
    session: ClaudeSession | None = None
    try:
        if "claude" in (designer, assessor):
            session = ClaudeSession(params.model, BudgetLedger(), cycle_id=run_id)
        progress.enter("designing", params.strategy_file or f"{designer} designer")
        history = History() if params.strategy_file else load_history()  # what a designer may read
        for problem in history.unreadable:
            progress.note(f"unreadable past result, left out of the history: {problem}")
        designed, market = _design(params, designer, session, stage, history)
        result.strategy_id = progress.strategy_id = designed.strategy_id
        strategy = enforce_operator_rules(designed)  # the operator's floors; raises naming each field
        progress.note(
            f"{strategy.strategy_id} on {market.symbol} {market.timeframe} ({len(market.bars)} bars)"
        )
        record = {**provenance(params.seed, market.sha256, market.source), "operator": _as_run(strategy)}

        progress.enter("features")
        frame = features(market.bars, strategy)
        bounds = split_bounds(len(market.bars), strategy.data)

        if strategy.has_model:
            progress.enter(
                "training", f"MLP {strategy.model.hidden_layers}, up to {strategy.model.epochs} epochs"
            )
            outcome = train(strategy, market.bars, frame, bounds, params.seed)
            stage.write_bytes("model.ckpt", outcome.checkpoint)
            result.metrics["training"] = outcome.metrics.model_dump(exclude={"loss_curve", "class_balance"})
            stage.write_json(
                "training.json", {**outcome.metrics.model_dump(mode="json"), "provenance": record}
            )
            gate = check_training_gate(outcome.metrics, strategy.gates.training)
            progress.gate(gate)
            progress.note(
                f"accuracy {outcome.metrics.accuracy:.3f}, final loss {outcome.metrics.final_loss:.3f}"
            )
            if not gate.passed:
                raise GateFailed(gate.reason)
            frame = frame.join(outcome.predictions.add_prefix("model."))
        else:
            progress.enter("training", "skipped: rule-only strategy")

        part = bounds.selection_part(strategy.has_model)
        progress.enter("backtesting", f"vectorbt: {part} (gate, designs) and held-out (for you)")
        report = backtest(strategy, market.bars, frame, bounds)
        result.metrics["backtest"] = {
            "selection_part": report.selection_part,
            "selection": report.selection.model_dump(mode="json"),
            "held_out": report.held_out.model_dump(mode="json"),
        }
        result.held_out = held_out_summary(report)
        stage.write_json("backtest.json", {**report.model_dump(mode="json"), "provenance": record})
        stage.write_bytes(EQUITY_PNG, equity_png(strategy, market.bars, frame, bounds, report))
        sel = report.selection
        sharpe = "n/a" if sel.sharpe is None else f"{sel.sharpe:.2f}"
        progress.note(f"{part} return {sel.total_return:.2%}, Sharpe {sharpe}, {sel.trades} closed trades")
        gate = check_backtest_gate(sel, strategy.gates.backtest)
        progress.gate(gate)
        if not gate.passed:
            raise GateFailed(gate.reason)

        progress.enter("assessing", f"{assessor} assessor")
        training = outcome.metrics if strategy.has_model else None
        if assessor == "claude":
            assessment = assess_claude(session, strategy, report, training)
        else:
            assessment = assess(strategy, report, training)
        result.verdict = assessment.verdict
        llm_calls = [c.model_dump() for c in session.calls if c.purpose == "assess"] if session else []
        stage.write_json(
            "assessment.json",
            {**assessment.model_dump(mode="json"), "llm_calls": llm_calls, "provenance": record},
        )
        progress.note(assessment.summary)

        progress.enter("saving")
        result.status = "completed"
        _account(result, progress, started, session)
        return _conclude(result, designed, stage, progress, record, learnings=assessment.learnings)
    except GateFailed as gate_failure:
        progress.failed("gate")
        result.failed_phase, result.reason = progress.phase, str(gate_failure)
        _account(result, progress, started, session)
        return _conclude(result, designed, stage, progress, record, learnings=[])
    except Exception as exc:
        result.failed_phase = progress.phase
        progress.failed("error")
        _account(result, progress, started, session)
        if isinstance(exc, (LLMFailure, BudgetExhausted)):
            result.reason = str(exc)  # already says what and why, e.g. "budget_exhausted: ..."
        else:
            result.reason = f"{(progress.phase or 'cycle').capitalize()} failed: {type(exc).__name__}: {exc}"
        progress.finish()
        return Failed(message=result.reason, data=result)
    finally:
        stage.discard()  # errors and cancellation (a BaseException) alike: no staged file survives


def _design(
    params: CycleParams, designer: str, session: ClaudeSession | None, stage: Stage, history: History
) -> tuple[Strategy, Market]:
    """Load the given contract (on another market it gets its own id), or pick a market and let a
    designer create one from the history's selection-part results."""
    if params.strategy_file:
        strategy = load_strategy(params.strategy_file)
        strategy = strategy.on_market(
            (params.symbol or strategy.symbol).upper(), params.timeframe or strategy.timeframe
        )
        return strategy, load_market_data(strategy.symbol, strategy.timeframe)
    if designer == "claude":
        taken = {p.stem for p in strategies_dir().glob("*.yaml")}
        tools = DesignTools(list_datasets(), history.entries, taken, params.symbol, params.timeframe)
        outcome = design_claude(session, tools)
        stage.write_json(
            "design.json",
            {
                "designer": "claude",
                "model": session.model,
                **outcome.model_dump(mode="json", exclude={"strategy"}),
                "totals": session.totals("design"),
            },
        )
        return outcome.strategy, load_market_data(outcome.strategy.symbol, outcome.strategy.timeframe)
    symbol, timeframe = _pick_market(params)
    market = load_market_data(symbol, timeframe)
    # scale from the train part of the operator's split: bars that no design will hold out
    split = operator_settings().default_split()
    volatility = median_abs_return(market.bars, split_bounds(len(market.bars), split).train[1])
    strategy = design(params.seed, history.entries, symbol, timeframe, volatility)
    return strategy, market


def _as_run(strategy: Strategy) -> dict:
    """The gates, costs and split this cycle ran with, after the operator's floors were applied."""
    return {
        "gates": strategy.gates.model_dump(),
        "fees": strategy.risk_model.fees,
        "slippage": strategy.risk_model.slippage,
        "data": strategy.data.model_dump(),
    }


def _account(
    result: CycleResult, progress: PhaseReporter, started: float, session: ClaudeSession | None
) -> None:
    """Fill in what a cycle spent, in seconds and in LLM calls, however it ends."""
    result.phase_seconds = progress.seconds()
    result.duration_s = round(time.monotonic() - started, 3)
    result.llm = _llm_summary(session)


def _llm_summary(session: ClaudeSession | None) -> dict:
    if session is None or not session.calls:
        return {}
    return {
        "model": session.model,
        "design": session.totals("design"),
        "assess": session.totals("assess"),
        "cycle": session.totals(),
        "calls": [c.model_dump() for c in session.calls],
    }


def _pick_market(params: CycleParams) -> tuple[str, str]:
    datasets = list_datasets()
    if params.symbol:
        matching = [d for d in datasets if d.symbol.upper() == params.symbol.upper()]
        timeframe = params.timeframe or (matching[0].timeframe if matching else "1d")
        return params.symbol.upper(), timeframe
    choices = [d for d in datasets if not params.timeframe or d.timeframe == params.timeframe]
    if not choices:
        raise ValueError(f"no market data for timeframe {params.timeframe!r}; see `stratlab data list`")
    default = next((d for d in choices if (d.symbol, d.timeframe) == DEFAULT_MARKET), None)
    pick = default or max(choices, key=lambda d: (d.end - d.start, d.symbol))  # else the longest history
    return pick.symbol, pick.timeframe


def _conclude(
    result: CycleResult,
    strategy: Strategy,
    stage: Stage,
    progress: PhaseReporter,
    record: dict,
    learnings: list[str],
) -> State:
    """Write cycle.json, commit the staged results, publish the summary artifact, return the state.

    ``history`` in cycle.json is what later designs read: selection-part numbers only.
    """
    started_at = datetime.fromisoformat(result.started_at)
    final = strategies_dir() / strategy.strategy_id / stage.run_folder_name(started_at)
    result.artifacts = {
        "strategy": str(strategies_dir() / f"{strategy.strategy_id}.yaml"),
        "results": str(final),
    }
    result.artifacts.update({p.stem: str(final / p.name) for p in sorted(stage.results.iterdir())})
    result.artifacts["cycle"] = str(final / "cycle.json")
    backtest = result.metrics.get("backtest", {})
    selection = backtest.get("selection", {})
    history = {
        "strategy_id": strategy.strategy_id,
        "family": family_of(strategy),
        "status": result.status,
        "reason": result.reason,
        "selection_part": backtest.get("selection_part"),
        "selection_sharpe": selection.get("sharpe"),
        "selection_return": selection.get("total_return"),
        "selection_trades": selection.get("trades"),
        "verdict": result.verdict,
        "learnings": learnings,
        "started_at": result.started_at,
    }
    if history["selection_part"] is None:
        del history["selection_part"]  # a training-gate failure: no backtest ran
    stage.write_json(
        "cycle.json", {**result.model_dump(mode="json"), "history": history, "provenance": record}
    )
    stage.commit(strategy, started_at)
    progress.finish()
    picture = final / EQUITY_PNG  # committed with the results; absent when no backtest ran
    create_markdown_artifact(
        markdown=summary_markdown(result, strategy, picture.read_bytes() if picture.is_file() else None),
        key="cycle-" + re.sub(r"[^a-z0-9]+", "-", strategy.strategy_id),
        description=f"Research cycle of {strategy.strategy_id}: {result.status}",
    )
    if result.status == "completed":
        return Completed(message=f"{strategy.strategy_id}: {result.verdict}", data=result)
    return Failed(message=result.reason, data=result)


def result_of(state: State) -> CycleResult:
    """The CycleResult a finished run carries, whatever its state."""
    data = state.result(raise_on_failure=False)
    if isinstance(data, CycleResult):
        return data
    run_id = str(state.state_details.flow_run_id) if state.state_details else ""
    return CycleResult(run_id=run_id, status="failed", reason=state.message or state.name)


def run_cycle(params: CycleParams) -> CycleResult:
    """Run one cycle in this process (Prefect's ephemeral API unless a server is configured)."""
    state = research_cycle(params, return_state=True)
    return result_of(state)

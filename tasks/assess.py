"""The offline assessor: a verdict, strengths, weaknesses, suggestions and learnings from the metrics.

An assessment judges the *selection* part of the data only: its verdict and learnings are what later
designs read (``tasks/design.py``, Claude's ``recent_strategies``), so the held-out part stays out of it
and is reported to the person separately (:func:`held_out_summary`). Verdicts follow seed 003:
``promote_candidate``, ``iterate`` or ``reject``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

from strategy_contract.models import Strategy
from tasks.backtest import BacktestReport
from tasks.train import TrainingMetrics

Verdict = Literal["promote_candidate", "iterate", "reject"]


class Assessment(BaseModel):
    strategy_id: str
    assessor: str
    verdict: Verdict
    summary: str
    strengths: list[str]
    weaknesses: list[str]
    suggestions: list[str]
    learnings: list[str]
    metrics: dict[str, float | int | None]


def headline_metrics(backtest: BacktestReport) -> dict[str, float | int | None]:
    """The selection-part numbers an assessment is about, recorded with it whoever wrote it."""
    sel = backtest.selection
    return {
        "selection_sharpe": sel.sharpe,
        "selection_total_return": sel.total_return,
        "selection_benchmark_return": sel.benchmark_return,
        "selection_max_drawdown": sel.max_drawdown,
        "selection_win_rate": sel.win_rate,
        "selection_trades": sel.trades,
        "selection_profit_factor": sel.profit_factor,
    }


def _profit_factor_text(pf: float) -> str:
    return "infinite (no losing trade)" if math.isinf(pf) else f"{pf:.2f}"


def assess_offline(
    strategy: Strategy, backtest: BacktestReport, training: TrainingMetrics | None
) -> Assessment:
    """Judge the selection part only (validation for a fitted model, train + validation for rules):
    the verdict and the learnings feed later designs, so the held-out part must not be in them."""
    sel, part = backtest.selection, backtest.selection_part
    strengths, weaknesses, suggestions = [], [], []
    sharpe = sel.sharpe if sel.sharpe is not None else 0.0
    pf = sel.profit_factor if sel.profit_factor is not None else 0.0

    if sharpe >= 1.0:
        strengths.append(f"{part} Sharpe {sharpe:.2f} is strong")
    elif sharpe <= 0:
        weaknesses.append(f"{part} Sharpe {sharpe:.2f}: no risk-adjusted edge")
    if math.isinf(pf):
        strengths.append(f"all {sel.trades} closed trades won: profit factor {_profit_factor_text(pf)}")
    elif pf >= 1.3:
        strengths.append(f"profit factor {pf:.2f}: winners outweigh losers")
    elif sel.trades and pf < 1.0:
        weaknesses.append(f"profit factor {pf:.2f} < 1: losses outweigh gains")
    if sel.total_return > sel.benchmark_return:
        strengths.append(f"return {sel.total_return:.1%} beats buy-and-hold {sel.benchmark_return:.1%}")
    else:
        weaknesses.append(f"return {sel.total_return:.1%} trails buy-and-hold {sel.benchmark_return:.1%}")
    if sel.max_drawdown <= 0.1:
        strengths.append(f"max drawdown {sel.max_drawdown:.1%} is contained")
    elif sel.max_drawdown > 0.25:
        weaknesses.append(f"max drawdown {sel.max_drawdown:.1%} is deep")
        suggestions.append("tighten the stop loss or reduce position_size")
    if sel.trades < 10:
        weaknesses.append(f"only {sel.trades} closed trades on {part} bars: too few to trust the statistics")
        suggestions.append("loosen the entry rules or test on a longer history")
    if training is not None:
        lift = training.accuracy - training.baseline_accuracy
        if lift < 0.02:
            weaknesses.append(
                f"validation accuracy {training.accuracy:.1%} is no better than always predicting the "
                f"majority class ({training.baseline_accuracy:.1%})"
            )
            suggestions.append("try other fuzzy inputs, a longer lookback or a different label threshold")
        else:
            strengths.append(f"model beats the majority-class baseline by {lift:.1%} accuracy")
    if sel.fees_paid > 0.5 * abs(sel.final_value - strategy.risk_model.init_cash) and sel.trades > 0:
        weaknesses.append(f"fees {sel.fees_paid:.2f} eat a large share of the result")
        suggestions.append("trade less often: slower signals or a trend filter")

    if sharpe >= 1.0 and pf >= 1.3 and sel.trades >= 10:
        verdict: Verdict = "promote_candidate"
    elif sharpe > 0 and pf >= 1.0:
        verdict = "iterate"
    else:
        verdict = "reject"
    if not suggestions and verdict != "promote_candidate":
        suggestions.append("explore neighbouring parameters in the optimisation space")

    family = "neuro-fuzzy" if strategy.has_model else "rule-only"
    indicator_types = sorted({ind.type for ind in strategy.indicators})
    learnings = [
        f"{family} {'+'.join(indicator_types)} on {strategy.symbol} {strategy.timeframe}: "
        f"{part} Sharpe {sharpe:.2f}, return {sel.total_return:.1%}, {sel.trades} trades -> {verdict}"
    ]
    summary = (
        f"{strategy.strategy_id}: {verdict.replace('_', ' ')} on {part} bars. Return {sel.total_return:.1%} "
        f"(buy-and-hold {sel.benchmark_return:.1%}), Sharpe {sharpe:.2f}, max drawdown {sel.max_drawdown:.1%}, "
        f"{sel.trades} closed trades, profit factor {_profit_factor_text(pf)}."
    )
    return Assessment(
        strategy_id=strategy.strategy_id,
        assessor="offline",
        verdict=verdict,
        summary=summary,
        strengths=strengths,
        weaknesses=weaknesses,
        suggestions=suggestions,
        learnings=learnings,
        metrics=headline_metrics(backtest),
    )


def held_out_summary(backtest: BacktestReport) -> str:
    """The held-out result in one sentence, for the person: no design, gate or learning reads it."""
    sel, ho = backtest.selection, backtest.held_out
    sharpe = "n/a" if ho.sharpe is None else f"{ho.sharpe:.2f}"
    sel_sharpe = "n/a" if sel.sharpe is None else f"{sel.sharpe:.2f}"
    open_note = ", plus one position open at the end" if ho.open_position is not None else ""
    return (
        f"Held-out {ho.start[:10]} to {ho.end[:10]}: return {ho.total_return:.1%} "
        f"(buy-and-hold {ho.benchmark_return:.1%}), Sharpe {sharpe} ({backtest.selection_part}: "
        f"{sel_sharpe}), max drawdown {ho.max_drawdown:.1%}, {ho.trades} closed trades{open_note}."
    )


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import cached_step  # noqa: E402

assess = cached_step(assess_offline, "assess")

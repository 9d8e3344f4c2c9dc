"""The offline assessor: a verdict, strengths, weaknesses, suggestions and learnings from the metrics.

The learnings are what later designs read (``tasks/design.py``); verdicts follow seed 003:
``promote_candidate``, ``iterate`` or ``reject``.
"""

from __future__ import annotations

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


def _degradation(is_sharpe: float | None, oos_sharpe: float | None) -> float | None:
    """How much of the in-sample Sharpe survives out of sample (seed 003's OOS degradation)."""
    if is_sharpe is None or oos_sharpe is None or is_sharpe <= 0:
        return None
    return (is_sharpe - oos_sharpe) / is_sharpe


def headline_metrics(backtest: BacktestReport) -> dict[str, float | int | None]:
    """The numbers an assessment is about, recorded with it whoever wrote it."""
    oos, ins = backtest.out_of_sample, backtest.in_sample
    return {
        "oos_sharpe": oos.sharpe,
        "oos_total_return": oos.total_return,
        "oos_max_drawdown": oos.max_drawdown,
        "oos_win_rate": oos.win_rate,
        "oos_trades": oos.trades,
        "oos_profit_factor": oos.profit_factor,
        "is_sharpe": ins.sharpe,
        "oos_degradation": _degradation(ins.sharpe, oos.sharpe),
    }


def assess_offline(
    strategy: Strategy, backtest: BacktestReport, training: TrainingMetrics | None
) -> Assessment:
    oos, ins = backtest.out_of_sample, backtest.in_sample
    strengths, weaknesses, suggestions = [], [], []
    sharpe = oos.sharpe if oos.sharpe is not None else 0.0
    pf = oos.profit_factor or 0.0
    degradation = _degradation(ins.sharpe, oos.sharpe)

    if sharpe >= 1.0:
        strengths.append(f"out-of-sample Sharpe {sharpe:.2f} is strong")
    elif sharpe <= 0:
        weaknesses.append(f"out-of-sample Sharpe {sharpe:.2f}: no risk-adjusted edge on held-out data")
    if pf >= 1.3:
        strengths.append(f"profit factor {pf:.2f}: winners outweigh losers")
    elif oos.trades and pf < 1.0:
        weaknesses.append(f"profit factor {pf:.2f} < 1: losses outweigh gains")
    if oos.total_return > oos.benchmark_return:
        strengths.append(f"return {oos.total_return:.1%} beats buy-and-hold {oos.benchmark_return:.1%}")
    else:
        weaknesses.append(f"return {oos.total_return:.1%} trails buy-and-hold {oos.benchmark_return:.1%}")
    if oos.max_drawdown <= 0.1:
        strengths.append(f"max drawdown {oos.max_drawdown:.1%} is contained")
    elif oos.max_drawdown > 0.25:
        weaknesses.append(f"max drawdown {oos.max_drawdown:.1%} is deep")
        suggestions.append("tighten the stop loss or reduce position_size")
    if oos.trades < 10:
        weaknesses.append(f"only {oos.trades} held-out trades: too few to trust the statistics")
        suggestions.append("loosen the entry rules or test on a longer history")
    if degradation is not None and degradation > 0.5:
        weaknesses.append(f"Sharpe falls {degradation:.0%} from in-sample to out-of-sample: likely overfit")
        suggestions.append("simplify the rules or widen the optimisation steps")
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
    if oos.fees_paid > 0.5 * abs(oos.final_value - strategy.risk_model.init_cash) and oos.trades > 0:
        weaknesses.append(f"fees {oos.fees_paid:.2f} eat a large share of the result")
        suggestions.append("trade less often: slower signals or a trend filter")

    if sharpe >= 1.0 and pf >= 1.3 and oos.trades >= 10 and (degradation is None or degradation <= 0.5):
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
        f"OOS Sharpe {sharpe:.2f}, return {oos.total_return:.1%}, {oos.trades} trades -> {verdict}"
    ]
    summary = (
        f"{strategy.strategy_id}: {verdict.replace('_', ' ')}. Held-out return {oos.total_return:.1%} "
        f"(buy-and-hold {oos.benchmark_return:.1%}), Sharpe {sharpe:.2f}, max drawdown {oos.max_drawdown:.1%}, "
        f"{oos.trades} trades."
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


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import cached_step  # noqa: E402

assess = cached_step(assess_offline, "assess")

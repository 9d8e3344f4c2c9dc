"""The offline assessor's verdicts, one test each, and what any assessor is shown: the selection part of
the data, never the held-out part."""

from __future__ import annotations

import json

import yaml
from conftest import STRATEGIES, period_metrics

from strategy_contract import parse_strategy
from tasks.assess import assess_offline, held_out_summary
from tasks.backtest import BacktestMetrics, BacktestReport
from tasks.llm.assess import assessment_brief

PILOT = parse_strategy(yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text()))


def period(
    sharpe: float | None = 1.2,
    profit_factor: float | None = 1.5,
    trades: int = 30,
    total_return: float = 0.12,
    benchmark_return: float = 0.05,
    start: str = "2017-01-02",
) -> BacktestMetrics:
    return period_metrics(
        start=start,
        total_return=total_return,
        benchmark_return=benchmark_return,
        sharpe=sharpe,
        sortino=sharpe,
        max_drawdown=0.08,
        win_rate=round(trades * 0.6) / trades if trades else None,
        trades=trades,
        profit_factor=profit_factor,
        gross_profit=1500.0,
        gross_loss=0.0 if profit_factor == float("inf") else 1000.0,
        fees_paid=20.0,
        final_value=10_000 * (1 + total_return),
    )


def report(selection: BacktestMetrics, held_out: BacktestMetrics | None = None) -> BacktestReport:
    return BacktestReport(
        selection=selection,
        selection_part="train+validation",
        held_out=held_out or period(sharpe=-3.0, profit_factor=0.4, total_return=-0.2, start="2017-10-02"),
        held_out_trades=[],
        bars_per_year=6200.0,
    )


def test_a_strong_robust_selection_result_is_a_promote_candidate():
    assessment = assess_offline(PILOT, report(period()), None)
    assert assessment.verdict == "promote_candidate"
    assert any("Sharpe 1.20 is strong" in s for s in assessment.strengths)


def test_a_positive_but_thin_result_is_iterate():
    assessment = assess_offline(PILOT, report(period(sharpe=0.4, profit_factor=1.1)), None)
    assert assessment.verdict == "iterate"
    assert assessment.suggestions  # what to try next


def test_too_few_trades_is_not_promoted_however_good():
    assessment = assess_offline(PILOT, report(period(sharpe=2.5, profit_factor=3.0, trades=6)), None)
    assert assessment.verdict == "iterate"
    assert any("only 6 closed trades" in w for w in assessment.weaknesses)


def test_no_edge_is_rejected():
    assessment = assess_offline(PILOT, report(period(sharpe=-0.3, profit_factor=0.8)), None)
    assert assessment.verdict == "reject"
    assert any("losses outweigh gains" in w for w in assessment.weaknesses)


def test_winners_only_is_an_infinite_profit_factor_and_not_a_loss():
    winners_only = period(sharpe=1.5, profit_factor=float("inf"), trades=12)
    assessment = assess_offline(PILOT, report(winners_only), None)

    assert assessment.verdict == "promote_candidate"
    assert not any("losses outweigh gains" in w for w in assessment.weaknesses)
    assert any("all 12 closed trades won" in s for s in assessment.strengths)
    assert "profit factor infinite (no losing trade)" in assessment.summary
    assert assessment.metrics["selection_profit_factor"] == float("inf")


def test_the_assessment_never_reads_the_held_out_part():
    """Two reports that differ only in their held-out part give the same assessment and the same brief
    for Claude; the held-out result is reported to the person on its own."""
    good_held_out = period(sharpe=2.0, total_return=0.3, start="2017-10-02")
    bad_held_out = period(sharpe=-3.0, profit_factor=0.4, total_return=-0.2, start="2017-10-02")
    one, other = report(period(), good_held_out), report(period(), bad_held_out)

    assert assess_offline(PILOT, one, None) == assess_offline(PILOT, other, None)
    assert assessment_brief(PILOT, one, None) == assessment_brief(PILOT, other, None)
    brief = json.loads(assessment_brief(PILOT, one, None).split("\n", 1)[1])
    assert brief["backtest"] == {"part": "train+validation", "metrics": one.selection.model_dump(mode="json")}
    assert held_out_summary(one) != held_out_summary(other)
    assert held_out_summary(other).startswith("Held-out 2017-10-02 to 2017-09-29: return -20.0%")

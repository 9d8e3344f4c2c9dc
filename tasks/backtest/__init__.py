"""Backtests: one interpreter (`portfolio.simulate`) for a single contract and for a sweep of its
parameter combinations, the metrics of every combination (`metrics`), and the report of a cycle."""

from __future__ import annotations

import pandas as pd

from strategy_contract.models import Strategy
from tasks.backtest.metrics import (
    METRICS,
    bars_per_year,
    column_metrics,
    open_position,
    portfolio_metrics,
    timeframe_delta,
    trade_list,
)
from tasks.backtest.portfolio import Simulation, rows_per_bar, simulate
from tasks.backtest.results import BacktestMetrics, BacktestReport, Trade
from tasks.edge import cached_step
from tasks.splits import SplitBounds

__all__ = [
    "METRICS",
    "BacktestMetrics",
    "BacktestReport",
    "Simulation",
    "Trade",
    "backtest",
    "bars_per_year",
    "column_metrics",
    "open_position",
    "portfolio_metrics",
    "rows_per_bar",
    "run_backtest",
    "simulate",
    "timeframe_delta",
    "trade_list",
]


def run_backtest(
    strategy: Strategy, bars: pd.DataFrame, frame: pd.DataFrame, bounds: SplitBounds
) -> BacktestReport:
    """The selection backtest (validation for a fitted model, train + validation otherwise) and the
    held-out test backtest, each a separate portfolio starting flat with ``init_cash``."""
    per_year = bars_per_year(bars.index)
    selection = simulate(strategy, bars, frame, *bounds.selection(strategy.has_model))
    held_out = simulate(strategy, bars, frame, *bounds.test)
    return BacktestReport(
        selection=portfolio_metrics(selection, per_year),
        selection_part=SplitBounds.selection_part(strategy.has_model),
        held_out=portfolio_metrics(held_out, per_year),
        held_out_trades=trade_list(held_out),
        bars_per_year=per_year,
    )


backtest = cached_step(run_backtest, "backtest")

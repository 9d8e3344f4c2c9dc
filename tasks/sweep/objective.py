"""What a sweep maximises, and which combinations may win.

Objectives, all larger-is-better and computed from the selection bars only:

- ``sharpe`` (default) and ``sortino``: as in :class:`tasks.backtest.BacktestMetrics`;
- ``total_return``: the period's return after all costs;
- ``calmar``: annualised return / max drawdown (Young's Calmar ratio, here over the swept period
  rather than 36 months), the annualised return being ``(1 + total_return) ** (bars_per_year / bars) - 1``.

A combination with fewer closed trades than ``min_trades``, or whose objective is undefined (a flat
equity has no Sharpe), cannot win: its score is NaN and it ranks last.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Objective = Literal["sharpe", "sortino", "total_return", "calmar"]
OBJECTIVES: tuple[str, ...] = ("sharpe", "sortino", "total_return", "calmar")


def objective_values(table: pd.DataFrame, objective: str, bars: int, per_year: float) -> pd.Series:
    """The objective of every row of a metrics table (NaN where undefined)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: '{objective}' is not one of {', '.join(OBJECTIVES)}")
    if objective != "calmar":
        return table[objective].astype(float)
    annual = (1.0 + table["total_return"]) ** (per_year / bars) - 1.0
    dd = table["max_drawdown"].where(table["max_drawdown"] > 0)
    return (annual / dd).astype(float)


def score(table: pd.DataFrame, objective: str, min_trades: int, bars: int, per_year: float) -> pd.Series:
    """The objective where a combination may win, NaN where it may not."""
    values = objective_values(table, objective, bars, per_year)
    eligible = (table["trades"] >= min_trades) & np.isfinite(values)
    if "trained" in table:  # model strategies: a group whose training failed its gate cannot win
        eligible &= table["trained"].astype(bool)
    return values.where(eligible)


def rank(table: pd.DataFrame) -> pd.DataFrame:
    """Best first by ``score``; ties keep grid order, combinations that cannot win come last."""
    return table.sort_values("score", ascending=False, na_position="last", kind="stable")

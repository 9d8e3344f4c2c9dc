"""The numbers of a simulated period, for every combination at once.

:func:`column_metrics` computes each metric of :class:`BacktestMetrics` as one array over all the
combinations (columns) of a :class:`Simulation`, from the bar values and vectorbt's trade and order
records grouped by column: no Python loop over columns. A single backtest reads its one row of that
table, so a sweep and a backtest report the same numbers.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd

from tasks.backtest.portfolio import Simulation
from tasks.backtest.results import BacktestMetrics, Trade

METRICS = (
    "total_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "trades",
    "profit_factor",
    "gross_profit",
    "gross_loss",
    "exposure",
    "fees_paid",
    "final_value",
)


def timeframe_delta(timeframe: str) -> timedelta:
    """'1h' -> 1 hour, '15m' -> 15 minutes, '1d' -> 1 day."""
    unit = {"m": "minutes", "h": "hours", "d": "days"}[timeframe[-1]]
    return timedelta(**{unit: int(timeframe[:-1])})


def bars_per_year(index: pd.DatetimeIndex) -> float:
    """Bars a year in this data (about 252 for daily stocks, about 6200 for hourly FX): Sharpe and
    Sortino are annualised with what the market really trades, not with calendar time."""
    years = (index[-1] - index[0]).total_seconds() / (365.25 * 86400)
    return (len(index) - 1) / years if years > 0 else float(len(index))


def _per_column(col: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(col, weights=weights, minlength=k).astype(float)


def column_metrics(sim: Simulation, per_year: float) -> pd.DataFrame:
    """One row per combination, the columns of :data:`METRICS` (see :class:`BacktestMetrics` for their
    definitions); NaN where a metric is undefined (None in :class:`BacktestMetrics`)."""
    from vectorbt.returns import nb as ret_nb

    k = sim.columns
    values = sim.bar_values()
    init = np.full(k, sim.init_cash)
    returns = ret_nb.returns_nb(values, init)
    enough = len(returns) >= 2
    sharpe = ret_nb.sharpe_ratio_nb(returns, per_year, 0.0, 1)
    sharpe = np.where(enough & (np.std(returns, axis=0) > 0) & np.isfinite(sharpe), sharpe, np.nan)
    sortino = ret_nb.sortino_ratio_nb(returns, per_year, 0.0)
    sortino = np.where(enough & np.any(returns < 0, axis=0) & np.isfinite(sortino), sortino, np.nan)
    # vectorbt's max_drawdown starts its running peak at the first bar's value, not the initial cash
    curve = np.vstack([init, values])
    max_dd = np.max(1.0 - curve / np.maximum.accumulate(curve, axis=0), axis=0)

    trades = sim.pf.trades.values
    closed = _closed(sim, trades)
    col, pnl = trades["col"][closed], trades["pnl"][closed]
    count = np.bincount(col, minlength=k)
    gross_profit = _per_column(col, np.where(pnl > 0, pnl, 0.0), k)
    gross_loss = _per_column(col, np.where(pnl < 0, -pnl, 0.0), k)
    wins = _per_column(col, (pnl > 0).astype(float), k)
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = np.where(count > 0, wins / count, np.nan)
        profit_factor = np.where(
            gross_loss > 0, gross_profit / gross_loss, np.where(gross_profit > 0, np.inf, np.nan)
        )
    # bars held after their open: a trade enters on an open row; it holds through the open of each bar
    # up to its exit row (an exit on a rest-of-bar row still held that bar's open)
    per_bar = sim.rows_per_bar
    held = (trades["exit_idx"] - trades["entry_idx"] + per_bar - 1) // per_bar
    exposure = _per_column(trades["col"], held.astype(float), k) / sim.n
    orders = sim.pf.orders.values
    return pd.DataFrame(
        {
            "total_return": values[-1] / sim.init_cash - 1.0,
            "sharpe": sharpe,
            "sortino": sortino,
            "max_drawdown": max_dd,
            "win_rate": win_rate,
            "trades": count,
            "profit_factor": profit_factor,
            "gross_profit": gross_profit,
            "gross_loss": gross_loss,
            "exposure": exposure,
            "fees_paid": _per_column(orders["col"], orders["fees"], k),
            "final_value": values[-1],
        }
    )


def _closed(sim: Simulation, trades: np.ndarray) -> np.ndarray:
    """Trades closed inside the period; the one closed by the valuation row is the open position."""
    return (trades["exit_idx"] != sim.valuation_row) & (trades["status"] != 0)  # 0: vectorbt's Open


def _trade(sim: Simulation, rec, closed: bool) -> Trade:
    index = sim.bars.index
    return Trade(
        entry_time=str(index[sim.bar_of(rec["entry_idx"])]),
        exit_time=str(index[sim.bar_of(rec["exit_idx"])]) if closed else None,
        direction="long" if int(rec["direction"]) == 0 else "short",
        size=float(rec["size"]),
        entry_price=float(rec["entry_price"]),
        exit_price=float(rec["exit_price"]),
        fees=float(rec["entry_fees"] + rec["exit_fees"]),
        pnl=float(rec["pnl"]),
        return_pct=float(rec["return"]),
        status="closed" if closed else "open",
    )


def trade_list(sim: Simulation, column: int = 0) -> list[Trade]:
    """The closed trades of one combination, in order."""
    trades = sim.pf.trades.values
    mine = trades[(trades["col"] == column) & _closed(sim, trades)]
    return [_trade(sim, rec, closed=True) for rec in mine]


def open_position(sim: Simulation, column: int = 0) -> Trade | None:
    """The position of one combination still open at the period's last close, valued as closed there."""
    trades = sim.pf.trades.values
    mine = trades[(trades["col"] == column) & ~_closed(sim, trades)]
    return _trade(sim, mine[-1], closed=False) if len(mine) else None


def _optional(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def portfolio_metrics(sim: Simulation, per_year: float, column: int = 0) -> BacktestMetrics:
    """The numbers a person and the backtest gate read (see :class:`BacktestMetrics`) for one
    combination: its row of :func:`column_metrics`, with the period and its open position."""
    row = column_metrics(sim, per_year).iloc[column]
    bars = sim.bars
    return BacktestMetrics(
        start=str(bars.index[0]),
        end=str(bars.index[-1]),
        bars=sim.n,
        total_return=float(row["total_return"]),
        benchmark_return=float(bars["close"].iloc[-1] / bars["open"].iloc[0] - 1.0),
        sharpe=_optional(row["sharpe"]),
        sortino=_optional(row["sortino"]),
        max_drawdown=float(row["max_drawdown"]),
        win_rate=_optional(row["win_rate"]),
        trades=int(row["trades"]),
        profit_factor=_optional(row["profit_factor"]),
        gross_profit=float(row["gross_profit"]),
        gross_loss=float(row["gross_loss"]),
        open_position=open_position(sim, column),
        exposure=float(row["exposure"]),
        fees_paid=float(row["fees_paid"]),
        final_value=float(row["final_value"]),
    )

"""Backtest a contract with vectorbt: signals at the close of bar t fill at the open of bar t+1.

One cost model everywhere: ``risk_model.fees`` (fraction of value per fill) and ``risk_model.slippage``
(fraction of price, against us, per fill). Stops are placed from the fill price; a stop that is hit
inside a bar exits at the stop level, or at the open when the bar opens beyond it. ATR stops use the
ATR of the signal bar, which is known when the order is placed. Stop exits pay the same slippage.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
from pydantic import BaseModel

from strategy_contract.models import ATRStop, PercentStop, Stop, Strategy
from tasks.signals import entry_signal, exit_signal


class BacktestMetrics(BaseModel):
    """Portfolio statistics of one period. Ratios are fractions (0.12 = 12%); None when undefined."""

    start: str
    end: str
    bars: int
    total_return: float
    benchmark_return: float  # buy and hold over the same bars
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    win_rate: float | None
    trades: int
    profit_factor: float | None
    exposure: float  # fraction of bars with an open position
    fees_paid: float
    final_value: float


class Trade(BaseModel):
    entry_time: str
    exit_time: str | None
    direction: str
    size: float
    entry_price: float
    exit_price: float | None
    fees: float
    pnl: float
    return_pct: float
    status: str


class BacktestReport(BaseModel):
    in_sample: BacktestMetrics
    out_of_sample: BacktestMetrics
    oos_trades: list[Trade]
    bars_per_year: float


def timeframe_delta(timeframe: str) -> timedelta:
    """'1h' -> 1 hour, '15m' -> 15 minutes, '1d' -> 1 day."""
    unit = {"m": "minutes", "h": "hours", "d": "days"}[timeframe[-1]]
    return timedelta(**{unit: int(timeframe[:-1])})


def bars_per_year(index: pd.DatetimeIndex) -> float:
    """Bars a year in this data (about 252 for daily stocks, about 6200 for hourly FX): Sharpe and
    Sortino are annualised with what the market really trades, not with calendar time."""
    years = (index[-1] - index[0]).total_seconds() / (365.25 * 86400)
    return (len(index) - 1) / years if years > 0 else float(len(index))


def _stop_fraction(stop: Stop | None, frame: pd.DataFrame) -> pd.Series | float:
    if stop is None:
        return np.nan
    if isinstance(stop, PercentStop):
        return stop.value
    if isinstance(stop, ATRStop):
        return stop.multiple * frame[stop.indicator] / frame["close"]
    raise TypeError(f"no stop rule for {type(stop).__name__}")


def simulate(
    strategy: Strategy, bars: pd.DataFrame, frame: pd.DataFrame, start: int, stop: int, per_year: float
):
    """Run the portfolio on bars[start:stop]; signals are computed on the whole frame (indicators are
    causal) and each is executed on the next bar of the period."""
    import vectorbt as vbt

    risk = strategy.risk_model
    period = slice(start, stop)
    px = bars.iloc[period]

    def next_bar(values: pd.Series | float) -> pd.Series | float:
        if isinstance(values, pd.Series):
            return values.iloc[period].shift(1)
        return values

    entries = next_bar(entry_signal(strategy.entry_rules, frame).astype(float)).fillna(0).astype(bool)
    exits = next_bar(exit_signal(strategy.exit_rules, frame).astype(float)).fillna(0).astype(bool)
    freq = timeframe_delta(strategy.timeframe)
    return vbt.Portfolio.from_signals(
        close=px["close"],
        open=px["open"],
        high=px["high"],
        low=px["low"],
        price=px["open"],
        entries=entries,
        exits=exits,
        direction="longonly" if risk.direction == "long" else "shortonly",
        size=risk.position_size,
        size_type="percent",
        fees=risk.fees,
        slippage=risk.slippage,
        sl_stop=next_bar(_stop_fraction(risk.stop_loss, frame)),
        tp_stop=next_bar(_stop_fraction(risk.take_profit, frame)),
        sl_trail=risk.trailing_stop,
        stop_entry_price="fillprice",
        stop_exit_price="stopmarket",
        init_cash=risk.init_cash,
        freq=freq,
    ), freq * per_year


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def portfolio_metrics(pf, year_freq: timedelta) -> BacktestMetrics:
    """The numbers a person and the backtest gate read, from a vectorbt portfolio."""
    closed = pf.trades.closed
    index = pf.wrapper.index
    close = pf.close
    return BacktestMetrics(
        start=str(index[0]),
        end=str(index[-1]),
        bars=len(index),
        total_return=float(pf.total_return()),
        benchmark_return=float(close.iloc[-1] / close.iloc[0] - 1.0),
        sharpe=_finite(pf.sharpe_ratio(year_freq=year_freq)),
        sortino=_finite(pf.sortino_ratio(year_freq=year_freq)),
        max_drawdown=abs(float(pf.max_drawdown())),
        win_rate=_finite(closed.win_rate()) if closed.count() else None,
        trades=int(pf.trades.count()),
        profit_factor=_finite(closed.profit_factor()) if closed.count() else None,
        exposure=float((pf.assets() != 0).mean()),
        fees_paid=float(pf.orders.fees.sum()),
        final_value=float(pf.final_value()),
    )


def trade_list(pf) -> list[Trade]:
    """Every trade of a portfolio, open ones included, as plain records."""
    rec = pf.trades.records_readable
    trades = []
    for _, row in rec.iterrows():
        is_open = row["Status"] == "Open"
        trades.append(
            Trade(
                entry_time=str(row["Entry Timestamp"]),
                exit_time=None if is_open else str(row["Exit Timestamp"]),
                direction=str(row["Direction"]).lower(),
                size=float(row["Size"]),
                entry_price=float(row["Avg Entry Price"]),
                exit_price=None if is_open else float(row["Avg Exit Price"]),
                fees=float(row["Entry Fees"] + row["Exit Fees"]),
                pnl=float(row["PnL"]),
                return_pct=float(row["Return"]),
                status=str(row["Status"]).lower(),
            )
        )
    return trades


def run_backtest(
    strategy: Strategy,
    bars: pd.DataFrame,
    frame: pd.DataFrame,
    in_sample: tuple[int, int],
    held_out: tuple[int, int],
) -> BacktestReport:
    """In-sample (train + validation bars) and out-of-sample (held-out test bars) backtests."""
    per_year = bars_per_year(bars.index)
    pf_is, year = simulate(strategy, bars, frame, *in_sample, per_year)
    pf_oos, _ = simulate(strategy, bars, frame, *held_out, per_year)
    return BacktestReport(
        in_sample=portfolio_metrics(pf_is, year),
        out_of_sample=portfolio_metrics(pf_oos, year),
        oos_trades=trade_list(pf_oos),
        bars_per_year=per_year,
    )


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import cached_step  # noqa: E402

backtest = cached_step(run_backtest, "backtest")

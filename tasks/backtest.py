"""Backtest a contract with vectorbt: a signal at the close of bar t fills at the open of bar t+1.

Costs: one cost model everywhere. ``risk_model.fees`` is a fraction of the traded value per fill and
``risk_model.slippage`` a fraction of the price, against us, per fill; both apply to every fill: signal
entries and exits, stop-loss, take-profit and trailing-stop exits, and the valuation of a position still
open at a period's end.

Stops are live on the entry bar. vectorbt's ``from_signals`` checks a stop only from the row after
the fill (its stop block runs before the fill of a row, while the position is still flat), so a
position entered at a bar's open could not be stopped out by that same bar's low. The simulation
therefore gives vectorbt two rows per bar:

- an *open row*: open = high = low = close = the bar's open. Every signal order fills here at the
  open. A stop left from an earlier bar is checked here first: a bar that opens beyond the stop (a gap)
  exits at the open (vectorbt's ``get_stop_price_nb`` returns the open when it is already beyond);
- a *rest-of-bar row*: the bar's real open, high, low and close. A stop set by this bar's entry is
  checked against this bar's low/high, so it can exit the same bar.

plus one *valuation row* after the last bar (open = high = low = close = the last close) where a
position still open is closed, so that every metric includes its exit fee and slippage; that trade is
reported as ``open_position``, not among the closed trades.

Stop details (vectorbt 1.2 ``simulate_from_signal_func_nb``): stops are placed from the fill price
(``stop_entry_price="fillprice"``, slippage included); a hit exits at the stop level, or at the open
when the row opens beyond it, and pays slippage (``stop_exit_price="stopmarket"``); when a bar reaches
both the stop loss and the take-profit the stop loss is taken (it is checked first: the conservative
reading of a bar whose path inside is unknown). A trailing stop follows the best price since entry,
updated after each row's check, so a bar's own high (low for a short) only moves the stop from the next
row on. ATR stops use the ATR of the signal bar (known when the order is placed) as a fraction of the
signal bar's close; a trade entered before the ATR is defined has no such stop. When an entry and an
exit rule hold at the same close, the exit wins (no entry, or the position is closed).

Every metric is computed from the bars, never from vectorbt's rows: the value at each bar's close
(the rest-of-bar rows, the valuation row for the last bar) gives the bar returns, annualised with
:func:`bars_per_year`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_serializer

from strategy_contract.models import ATRStop, PercentStop, Stop, Strategy
from tasks.signals import entry_signal, exit_signal
from tasks.splits import SplitBounds


class Trade(BaseModel):
    """One round trip. Prices are fill prices (slippage included); ``fees`` are entry plus exit fees;
    ``pnl`` is net of all of them; ``return_pct`` is pnl / (size x entry price).

    A position still open at a period's end has ``status="open"`` and ``exit_time=None``; its
    ``exit_price``, ``fees`` and ``pnl`` are those of closing it at the last bar's close (slippage and
    exit fee included), the valuation every metric uses.
    """

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


def _json_float(value: float | None) -> float | str | None:
    """JSON has no infinity: a non-finite float becomes the string pydantic reads back as that float."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


class BacktestMetrics(BaseModel):
    """Portfolio statistics of one period. Ratios are fractions (0.12 = 12%).

    - ``total_return``, ``final_value``, ``sharpe``, ``sortino``, ``max_drawdown`` treat a position open
      at the last bar as closed at its close, with exit fee and slippage; ``trades``, ``win_rate``,
      ``profit_factor``, ``gross_profit`` and ``gross_loss`` count closed trades only, and the open one
      is ``open_position``. ``fees_paid`` includes that valuation's exit fee.
    - ``sharpe`` = mean(r) / std(r, ddof=1) x sqrt(bars_per_year) and ``sortino`` = mean(r) /
      sqrt(mean(min(r, 0)^2)) x sqrt(bars_per_year) (vectorbt's definitions), r the return of each bar
      (value at its close over the one before; the first over the initial cash); None when undefined
      (fewer than two bars, flat equity, no losing bar for Sortino).
    - ``max_drawdown``: the largest fall of the close-to-close value from its running peak, the initial
      cash included, as a positive fraction.
    - ``benchmark_return``: buy and hold from the first bar's open to the last bar's close, no costs.
    - ``exposure``: fraction of bars with a position held after the bar's open.
    - ``gross_profit`` / ``gross_loss``: sums of the winning pnls and of the losing pnls' magnitudes
      (both >= 0). ``profit_factor`` = gross_profit / gross_loss; ``float('inf')`` when there are
      winners and no loser, None with no closed trade (or only zero-pnl ones).

    JSON: ``profit_factor`` infinity is written as the string ``"Infinity"`` by ``model_dump(mode="json")``
    and ``model_dump_json()`` (JSON has no infinity), and ``model_validate`` reads it back as
    ``float('inf')``.
    """

    model_config = ConfigDict(ser_json_inf_nan="strings")

    start: str
    end: str
    bars: int
    total_return: float
    benchmark_return: float
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    win_rate: float | None
    trades: int
    profit_factor: float | None
    gross_profit: float
    gross_loss: float
    open_position: Trade | None = None
    exposure: float
    fees_paid: float
    final_value: float

    @field_serializer("profit_factor", when_used="json")
    def _strict_json(self, value: float | None) -> float | str | None:
        return _json_float(value)


class BacktestReport(BaseModel):
    """``selection``: the bars that rank designs and run the backtest gate
    (``SplitBounds.selection``); ``held_out``: the test bars, for the person only.
    ``held_out_trades`` are its closed trades (its open one is ``held_out.open_position``)."""

    selection: BacktestMetrics
    selection_part: str
    held_out: BacktestMetrics
    held_out_trades: list[Trade]
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


def _stop_fraction(stop: Stop | None, frame: pd.DataFrame) -> pd.Series:
    """The stop distance as a fraction of price, known at each bar's close."""
    if stop is None:
        return pd.Series(np.nan, index=frame.index)
    if isinstance(stop, PercentStop):
        return pd.Series(stop.value, index=frame.index)
    if isinstance(stop, ATRStop):
        return stop.multiple * frame[stop.indicator] / frame["close"]
    raise TypeError(f"no stop rule for {type(stop).__name__}")


@dataclass(frozen=True)
class Simulation:
    """A vectorbt portfolio on the rows described in the module docstring, with the period's bars.

    Row ``2t`` is bar t's open row, ``2t + 1`` its rest-of-bar row, ``2n`` the valuation row."""

    pf: Any
    bars: pd.DataFrame
    init_cash: float

    @property
    def n(self) -> int:
        return len(self.bars)

    def bar_of(self, row: int) -> int:
        return min(int(row) // 2, self.n - 1)

    def bar_values(self) -> np.ndarray:
        """Portfolio value at each bar's close; the last one after closing an open position."""
        value = self.pf.value().to_numpy()
        return np.append(value[1 : 2 * self.n - 1 : 2], value[2 * self.n])


def _rows(on_open, on_rest, last) -> np.ndarray:
    """vectorbt's rows from per-bar values: open rows, rest-of-bar rows, then the valuation row."""
    on_open = np.asarray(on_open)
    out = np.empty(2 * len(on_open) + 1, dtype=on_open.dtype)
    out[0:-1:2] = on_open
    out[1:-1:2] = on_rest
    out[-1] = last
    return out


def simulate(
    strategy: Strategy, bars: pd.DataFrame, frame: pd.DataFrame, start: int, stop: int
) -> Simulation:
    """Run the portfolio on bars[start:stop], starting flat with ``init_cash``. Signals and stop
    distances are computed on the whole frame (indicators are causal) and each acts at the next bar's
    open: the first bar of the period can fill a signal of the bar before it."""
    import vectorbt as vbt

    if not frame.index.equals(bars.index):
        raise ValueError("backtest: the feature frame and the bars must share one index")
    risk = strategy.risk_model
    px = bars.iloc[start:stop]
    if len(px) == 0:
        raise ValueError(f"backtest: the period [{start}, {stop}) has no bars")

    def next_bar(series: pd.Series, fill) -> np.ndarray:
        return series.shift(1, fill_value=fill).iloc[start:stop].to_numpy()

    entries = next_bar(entry_signal(strategy.entry_rules, frame).astype(bool), False)
    exits = next_bar(exit_signal(strategy.exit_rules, frame).astype(bool), False)
    sl = next_bar(_stop_fraction(risk.stop_loss, frame).astype(float), np.nan)
    tp = next_bar(_stop_fraction(risk.take_profit, frame).astype(float), np.nan)

    o, h, lo, c = (px[f].to_numpy(dtype=float) for f in ("open", "high", "low", "close"))
    close = _rows(o, c, c[-1])
    pf = vbt.Portfolio.from_signals(
        close=pd.Series(close),
        open=_rows(o, o, c[-1]),
        high=_rows(o, h, c[-1]),
        low=_rows(o, lo, c[-1]),
        price=close,  # each row fills at its own close: the open on open rows, the last close at the end
        entries=_rows(entries, False, False),
        exits=_rows(exits, False, True),  # the valuation row closes what is still open
        direction="longonly" if risk.direction == "long" else "shortonly",
        upon_long_conflict="exit",
        upon_short_conflict="exit",
        size=risk.position_size,
        size_type="percent",
        fees=risk.fees,
        slippage=risk.slippage,
        sl_stop=_rows(sl, np.nan, np.nan),
        tp_stop=_rows(tp, np.nan, np.nan),
        sl_trail=risk.trailing_stop,
        stop_entry_price="fillprice",
        stop_exit_price="stopmarket",
        init_cash=risk.init_cash,
    )
    return Simulation(pf=pf, bars=px, init_cash=float(risk.init_cash))


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _all_trades(sim: Simulation) -> list[Trade]:
    index = sim.bars.index
    trades = []
    for rec in sim.pf.trades.values:
        valued = int(rec["exit_idx"]) == 2 * sim.n or int(rec["status"]) == 0  # 0: vectorbt's Open
        trades.append(
            Trade(
                entry_time=str(index[sim.bar_of(rec["entry_idx"])]),
                exit_time=None if valued else str(index[sim.bar_of(rec["exit_idx"])]),
                direction="long" if int(rec["direction"]) == 0 else "short",
                size=float(rec["size"]),
                entry_price=float(rec["entry_price"]),
                exit_price=float(rec["exit_price"]),
                fees=float(rec["entry_fees"] + rec["exit_fees"]),
                pnl=float(rec["pnl"]),
                return_pct=float(rec["return"]),
                status="open" if valued else "closed",
            )
        )
    return trades


def trade_list(sim: Simulation) -> list[Trade]:
    """The period's closed trades, in order."""
    return [t for t in _all_trades(sim) if t.status == "closed"]


def open_position(sim: Simulation) -> Trade | None:
    """The position still open at the period's last close, valued as closed there."""
    still_open = [t for t in _all_trades(sim) if t.status == "open"]
    return still_open[-1] if still_open else None


def portfolio_metrics(sim: Simulation, per_year: float) -> BacktestMetrics:
    """The numbers a person and the backtest gate read (see :class:`BacktestMetrics`)."""
    from vectorbt.returns import nb as ret_nb

    values = sim.bar_values()
    returns = ret_nb.returns_1d_nb(values, sim.init_cash)
    down = np.minimum(returns, 0.0)
    sharpe = sortino = None
    if len(returns) >= 2 and np.std(returns) > 0:
        sharpe = _finite(ret_nb.sharpe_ratio_1d_nb(returns, per_year, 0.0, 1))
    if len(returns) >= 2 and np.any(down < 0):
        sortino = _finite(ret_nb.sortino_ratio_1d_nb(returns, per_year, 0.0))
    # vectorbt's max_drawdown starts its running peak at the first bar's value, not the initial cash
    curve = np.append(sim.init_cash, values)
    max_dd = float(np.max(1.0 - curve / np.maximum.accumulate(curve)))

    closed = trade_list(sim)
    pnl = np.array([t.pnl for t in closed])
    gross_profit = float(pnl[pnl > 0].sum())
    gross_loss = float(-pnl[pnl < 0].sum())
    if gross_loss > 0:
        profit_factor = gross_profit / gross_loss
    elif gross_profit > 0:
        profit_factor = math.inf
    else:
        profit_factor = None

    held_after_open = sim.pf.assets().to_numpy()[0 : 2 * sim.n : 2] != 0
    bars = sim.bars
    return BacktestMetrics(
        start=str(bars.index[0]),
        end=str(bars.index[-1]),
        bars=sim.n,
        total_return=float(values[-1] / sim.init_cash - 1.0),
        benchmark_return=float(bars["close"].iloc[-1] / bars["open"].iloc[0] - 1.0),
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=max_dd,
        win_rate=float((pnl > 0).mean()) if len(closed) else None,
        trades=len(closed),
        profit_factor=profit_factor,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        open_position=open_position(sim),
        exposure=float(held_after_open.mean()),
        fees_paid=float(sim.pf.orders.values["fees"].sum()),
        final_value=float(values[-1]),
    )


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


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import cached_step  # noqa: E402

backtest = cached_step(run_backtest, "backtest")

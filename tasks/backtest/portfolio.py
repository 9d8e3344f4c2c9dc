"""Simulate a contract with vectorbt: a signal at the close of bar t fills at the open of bar t+1.

One interpreter for a single backtest and for a sweep: every input is a 2-D array of shape (bars,
combinations), and a single backtest is a sweep of one combination. The combinations of a sweep differ
only in the values of their optimisation parameters (``params``, one row each): indicator windows reach
the rules through the panel (``tasks/sweep/panel.py``), stop sizes through :func:`stop_fractions`.

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

(a contract without stop-loss and take-profit needs only the open rows: nothing happens inside its
bars). When the order of events inside a bar decides the outcome (a trailing stop, or a stop-loss and
a take-profit together), the rest of the bar is three rows instead of one, the legs of the path
open -> nearer extreme -> farther extreme -> close (the extreme nearer the open first, the low on a tie):
TradingView's broker emulator assumes this path for a strategy without the bar magnifier, and PyneCore
and the C# exports' runner follow it. What really happened inside a bar is unknowable from its OHLC; the
point is that the engine and the exported strategies assume the same thing. Then the exit is whichever
level the path reaches first, and a trailing stop moves on the way up and can be taken on the way down
within one bar. Plus one *valuation row* after the last bar (open = high = low = close = the last close) where a
position still open is closed, so that every metric includes its exit fee and slippage; that trade is
reported as ``open_position``, not among the closed trades.

Stop details (vectorbt 1.2 ``simulate_from_signal_func_nb``): stops are placed from the fill price
(``stop_entry_price="fillprice"``, slippage included); a hit exits at the stop level, or at the open
when the row opens beyond it, and pays slippage (``stop_exit_price="stopmarket"``). When one row
reaches both the stop loss and the take-profit, the stop loss is taken (vectorbt checks it first); with
the path rows that only happens on a leg that spans both, so the level the path reaches first decides.
A trailing stop follows the best price since entry, updated after each row's check (so a leg's own
high moves the stop from the next leg on), and keeps the distance it had at the fill
(``_fixed_trail_nb``; vectorbt alone would trail a fraction of the best price). An ATR stop lies
``multiple x ATR`` of the signal bar (known when the order is placed) in price from the fill, as
TradingView's ``strategy.exit(loss=, profit=)`` in ticks places it (the Pine export relies on it); a
trade entered before the ATR is defined has no such stop. A percent stop is that fraction of the fill
price. When an entry and an exit rule hold at the same close, the exit wins (no entry, or the position
is closed).

Every metric is computed from the bars, never from vectorbt's rows: the value at each bar's close
(the rest-of-bar rows, the valuation row for the last bar) gives the bar returns, annualised with
:func:`bars_per_year`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from strategy_contract.models import ATRStop, PercentStop, Stop, Strategy
from tasks.backtest.signals import Panel, entry_signal, exit_signal


class FramePanel(Mapping):
    """A feature frame (one column per reference) read as a one-combination panel."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def __getitem__(self, ref: str) -> np.ndarray:
        return self.frame[ref].to_numpy(dtype=float)[:, None]

    def __iter__(self):
        return iter(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame.columns)


def stop_fractions(stop: Stop, key: str, panel: Panel, params: pd.DataFrame | None) -> np.ndarray:
    """The stop distance as a fraction of price, known at each bar's close: (bars, combinations).
    ``key`` names the stop's size in ``params`` (``risk_model.stop_loss.multiple``); a combination
    without that column uses the contract's size."""
    close = panel["close"]
    field = "value" if isinstance(stop, PercentStop) else "multiple"
    column = f"{key}.{field}"
    if params is not None and column in params:
        size = params[column].to_numpy(dtype=float)[None, :]
    else:
        size = np.array([[getattr(stop, field)]], dtype=float)
    if isinstance(stop, PercentStop):
        return np.broadcast_to(size, (len(close), size.shape[1]))
    if isinstance(stop, ATRStop):
        return size * panel[stop.indicator] / close
    raise TypeError(f"no stop rule for {type(stop).__name__}")


@dataclass(frozen=True)
class Simulation:
    """A vectorbt portfolio on the rows described in the module docstring, with the period's bars.

    With stops, row ``2t`` is bar t's open row, ``2t + 1`` its rest-of-bar row, ``2n`` the valuation
    row; without stops (``rows_per_bar == 1``) row ``t`` is bar t's open row and ``n`` the valuation
    row. Column j is combination j."""

    pf: Any
    bars: pd.DataFrame
    init_cash: float
    rows_per_bar: int = 2

    @property
    def n(self) -> int:
        return len(self.bars)

    @property
    def columns(self) -> int:
        return int(self.pf.wrapper.shape_2d[1])

    @property
    def valuation_row(self) -> int:
        return self.rows_per_bar * self.n

    def bar_of(self, row) -> np.ndarray:
        return np.minimum(np.asarray(row) // self.rows_per_bar, self.n - 1)

    def bar_values(self) -> np.ndarray:
        """Portfolio value at each bar's close, (bars, combinations); the last one after closing an
        open position. Rebuilt from the orders (cash and units after each bar), which costs a few passes
        over the bars instead of vectorbt's per-row cash, assets and value arrays."""
        orders = self.pf.orders.values
        n, k = self.n, self.columns
        slot = self.bar_of(orders["idx"]) * k + orders["col"]
        units = np.where(orders["side"] == 0, orders["size"], -orders["size"])
        cash_flow = -units * orders["price"] - orders["fees"]
        cash = np.bincount(slot, weights=cash_flow, minlength=n * k).reshape(n, k).cumsum(axis=0)
        held = np.bincount(slot, weights=units, minlength=n * k).reshape(n, k).cumsum(axis=0)
        close = self.bars["close"].to_numpy(dtype=float)[:, None]
        return self.init_cash + cash + held * close  # the valuation row leaves no units at the end


def _rows(per_bar: list, last) -> np.ndarray:
    """vectorbt's rows from per-bar values: ``per_bar`` holds one (bars, k) array (or scalar) per row of
    a bar, in row order; then the valuation row."""
    first = next(np.asarray(x) for x in per_bar if np.ndim(x) > 0)
    first = first[:, None] if first.ndim == 1 else first
    n, k = first.shape
    out = np.empty((len(per_bar) * n + 1, k), dtype=first.dtype)
    for j, x in enumerate(per_bar):
        x = np.asarray(x)
        out[j : -1 : len(per_bar)] = x[:, None] if x.ndim == 1 else x
    out[-1] = last
    return out


def _path(o: np.ndarray, h: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two extremes of each bar in the order the price is taken to reach them: the one nearer the
    open first, the low on a tie (TradingView's broker emulator; PyneCore's
    ``lib/strategy/__init__.py``: ``ohlc = self.h - self.o < self.o - self.l``)."""
    high_first = h - o < o - lo
    return np.where(high_first, h, lo), np.where(high_first, lo, h)


@njit(cache=True)
def _fixed_trail_nb(c, fractions):  # pragma: no cover - compiled
    """A trailing stop a fixed distance from the best price: vectorbt trails a *fraction* of the best
    price; this keeps the distance it had at the fill (``fraction x fill price``), as TradingView's
    ``trail_offset`` and cTrader's trailing stop do."""
    if not c.curr_trail or np.isnan(c.curr_stop) or c.init_i < 0:
        return c.curr_stop, c.curr_trail
    distance = fractions[c.init_i, c.col if fractions.shape[1] > 1 else 0] * c.init_price
    return distance / c.curr_price, c.curr_trail


def _next_bar(x: np.ndarray, start: int, stop: int, fill) -> np.ndarray:
    """What the bar before each bar of [start, stop) said: a signal acts at the next bar's open."""
    out = np.empty((stop - start, x.shape[1]), dtype=x.dtype)
    if start == 0:
        out[0] = fill
        out[1:] = x[: stop - 1]
    else:
        out[:] = x[start - 1 : stop - 1]
    return out


def rows_per_bar(strategy: Strategy) -> int:
    """vectorbt rows a bar takes. Without stops nothing happens inside a bar: its open row alone
    carries the orders. One fixed stop is reached or not whatever the path inside the bar (2 rows); a
    trailing stop, or a stop and a take-profit together, need the path (open -> nearer extreme ->
    farther extreme -> close: 4 rows)."""
    risk = strategy.risk_model
    if risk.stop_loss is not None and (risk.trailing_stop or risk.take_profit is not None):
        return 4
    return 2 if risk.stop_loss is not None or risk.take_profit is not None else 1


def simulate(
    strategy: Strategy,
    bars: pd.DataFrame,
    panel: Panel | pd.DataFrame,
    start: int,
    stop: int,
    params: pd.DataFrame | None = None,
) -> Simulation:
    """Run the portfolio of every combination on bars[start:stop], each starting flat with
    ``init_cash``. Signals and stop distances are computed on all the bars (indicators are causal) and
    act at the next bar's open: the first bar of the period can fill a signal of the bar before it.

    ``panel`` holds the references of the combinations in ``params`` (one row each); a feature frame
    (one column per reference) is the one-combination case."""
    import vectorbt as vbt

    if isinstance(panel, pd.DataFrame):
        if not panel.index.equals(bars.index):
            raise ValueError("backtest: the feature frame and the bars must share one index")
        panel = FramePanel(panel)
    risk = strategy.risk_model
    px = bars.iloc[start:stop]
    if len(px) == 0:
        raise ValueError(f"backtest: the period [{start}, {stop}) has no bars")
    k = 1 if params is None else len(params)

    def period(x: np.ndarray, fill) -> np.ndarray:
        return np.broadcast_to(_next_bar(x, start, stop, fill), (stop - start, k))

    per_bar = rows_per_bar(strategy)
    o, h, lo, c = (px[f].to_numpy(dtype=float) for f in ("open", "high", "low", "close"))
    first, second = _path(o, h, lo)

    def rows(on_open, inside, last) -> np.ndarray:
        """``inside``: the values of the rows after the open row, one per row."""
        return _rows([on_open, *inside[: per_bar - 1]], last)

    def stop_rows(level: Stop | None, key: str) -> np.ndarray | float:
        if level is None:
            return np.nan  # one scalar: no (rows x combinations) array of NaN
        fraction = period(stop_fractions(level, key, panel, params), np.nan)
        if isinstance(level, ATRStop):  # a distance in price from the fill: as a fraction of the fill price
            fill = o[:, None] * (1.0 + (1.0 if risk.direction == "long" else -1.0) * risk.slippage)
            fraction = fraction * period(panel["close"], np.nan) / fill
        return rows(fraction, [np.nan] * 3, np.nan)

    entries = period(entry_signal(strategy.entry_rules, panel), False)
    exits = period(exit_signal(strategy.exit_rules, panel), False)
    # The rows inside a bar: with the path, three legs (each row spans one leg); else the whole bar.
    if per_bar == 4:
        legs_open, legs_close = [o, first, second], [first, second, c]
        legs_high = [np.maximum(o, first), h, np.maximum(second, c)]
        legs_low = [np.minimum(o, first), lo, np.minimum(second, c)]
    else:
        legs_open, legs_close, legs_high, legs_low = [o], [c], [h], [lo]
    close = rows(o, legs_close, c[-1])
    sl_stop = stop_rows(risk.stop_loss, "risk_model.stop_loss")
    trail = {}
    if risk.trailing_stop and risk.stop_loss is not None:
        trail = {"adjust_sl_func_nb": _fixed_trail_nb, "adjust_sl_args": (np.ascontiguousarray(sl_stop),)}
    pf = vbt.Portfolio.from_signals(
        close=close,
        open=rows(o, legs_open, c[-1]),
        high=rows(o, legs_high, c[-1]),
        low=rows(o, legs_low, c[-1]),
        price=close,  # each row fills at its own close: the open on open rows, the last close at the end
        entries=rows(entries, [False] * 3, False),
        exits=rows(exits, [False] * 3, True),  # the valuation row closes what is still open
        direction="longonly" if risk.direction == "long" else "shortonly",
        upon_long_conflict="exit",
        upon_short_conflict="exit",
        size=risk.position_size,
        size_type="percent",
        fees=risk.fees,
        slippage=risk.slippage,
        sl_stop=sl_stop,
        tp_stop=stop_rows(risk.take_profit, "risk_model.take_profit"),
        sl_trail=risk.trailing_stop,
        stop_entry_price="fillprice",
        stop_exit_price="stopmarket",
        init_cash=risk.init_cash,
        # every order opens a position on an entry signal or closes one: at most two per entry signal.
        # vectorbt's default reserves one record per row and column, the largest array of a sweep.
        max_orders=2 * int(np.count_nonzero(entries)) + 1,
        **trail,
    )
    return Simulation(pf=pf, bars=px, init_cash=float(risk.init_cash), rows_per_bar=per_bar)

"""The backtesting.py side of ``bench/bench_sweep.py``: the EMA-cross grid run by ``Backtest.optimize``.

backtesting.py is AGPL: only benchmark code imports it (the ``bench`` extra), never the product.

The strategy is ours, bar for bar: Pine's seeded EMA from ``tasks.indicators``; a cross seen at the
close of bar t (both bars defined) fills at the open of bar t+1; long only, one position, all equity,
``fees`` of the traded value on every fill, no stops, no slippage. A position still open after the last
bar is sold at the last close, paying the fee, as our engine's valuation row does (see ``_prepare``),
so "Equity Final [$]", which optimize maximizes, is the final equity our engine reports.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import backtesting
import backtesting.backtesting as bt_module
import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy

from tasks.indicators import compute

# Large enough that whole-unit sizing is fractional sizing in all but the 12th digit, see _run_kwargs.
CASH = 1e12
_LAST, _VALUATION = 1, 2  # values of the "Stage" column: last real bar, appended valuation bar


def _ema_column(window: int) -> str:
    return f"Ema{int(window)}"


def _prepare(bars: pd.DataFrame, windows: set[int]) -> pd.DataFrame:
    """backtesting.py's frame: capitalised OHLCV, one precomputed EMA column per window, a Stage column,
    and one valuation bar after the last (OHLC = the last close, EMAs NaN).

    The EMAs are precomputed here, outside the timed optimize call: backtesting.py takes extra data
    columns, ships them to its workers in shared memory, and ``init()`` wraps them with ``self.I``.
    The valuation bar exists because backtesting.py fills a market order only at a next bar's open:
    the last real bar orders the position closed, and the order fills at this bar's open, i.e. at the
    last close, with commission. Its trade is the open position, which ``_closed_trades`` drops.
    """
    frame = bars[["open", "high", "low", "close", "volume"]].astype(float)
    frame.columns = ["Open", "High", "Low", "Close", "Volume"]
    for w in sorted(windows):
        frame[_ema_column(w)] = compute("ema", bars, {"window": int(w)})["value"].to_numpy()
    frame["Stage"] = 0.0
    frame.iloc[-1, frame.columns.get_loc("Stage")] = _LAST
    step = frame.index[-1] - frame.index[-2] if len(frame) > 1 else pd.Timedelta(hours=1)
    last_close = float(frame["Close"].iloc[-1])
    valuation = {c: np.nan for c in frame.columns} | dict.fromkeys(
        ("Open", "High", "Low", "Close"), last_close
    )
    valuation |= {"Volume": 0.0, "Stage": _VALUATION}
    extra = pd.DataFrame([valuation], index=pd.DatetimeIndex([frame.index[-1] + step], name=frame.index.name))
    return pd.concat([frame, extra])


class EmaCross(Strategy):
    """Enter when the fast EMA crosses above the slow one, exit when it crosses below (signals at the close).

    Module level, not built in a function: optimize pickles the Backtest, strategy class included, to
    its workers."""

    fast = 10
    slow = 30

    def init(self) -> None:
        # The precomputed Pine EMAs (data columns) revealed bar by bar; their NaN warm-up makes
        # backtesting.py start next() on the bar after both are defined, as our cross needs.
        self.fast_ema = self.I(lambda: self.data[_ema_column(self.fast)], name="fast")
        self.slow_ema = self.I(lambda: self.data[_ema_column(self.slow)], name="slow")

    def next(self) -> None:
        stage = self.data.Stage[-1]
        if stage == _VALUATION:
            return
        if stage == _LAST:  # sell what is left at the valuation bar's open = the last close
            self.position.close()
            return
        f0, f1, s0, s1 = self.fast_ema[-1], self.fast_ema[-2], self.slow_ema[-1], self.slow_ema[-2]
        if np.isnan(f0) or np.isnan(f1) or np.isnan(s0) or np.isnan(s1):
            return  # a NaN EMA never produces a signal
        above, was_above = f0 > s0, f1 > s1
        if was_above and not above:
            self.position.close()  # fills at the next bar's open
        elif above and not was_above and not self.position:
            self.buy()  # all equity: size = int(equity / (open * (1 + fees)))


def _run_kwargs(fees: float) -> dict[str, Any]:
    """Backtest settings shared by optimize and run.

    Commission: backtesting.py charges ``commission * |size| * price`` at the entry fill and again at
    the exit fill (spread = 0, so fills are at the bar's open exactly), i.e. ``fees`` of the traded value
    per fill, as our engine. Its all-equity buy sizes ``int(equity / (price * (1 + fees)))``: our
    engine's ``equity / (price * (1 + fees))`` but in whole units. A 1e12 cash keeps that rounding below
    1e-11 of equity per trade; FractionalBacktest would do the same by scaling prices by 1e-8 and back,
    which leaves entry/exit prices off by rounding, while plain Backtest reports the bar's open exactly.
    Sizing never changes the trades' timestamps (no stops, signals do not depend on equity).
    """
    return {
        "cash": CASH,
        "commission": float(fees),
        "spread": 0.0,
        "trade_on_close": False,
        "exclusive_orders": False,
        "finalize_trades": False,  # the valuation bar closes the last position at the last close instead
    }


class _SerialPool:
    """Stands in for ``backtesting.Pool`` when processes=False: maps in this process, in order."""

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def __enter__(self) -> _SerialPool:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def imap(self, fn: Callable[[Any], Any], iterable: Iterable[Any]) -> Iterator[Any]:
        return map(fn, iterable)


@contextmanager
def _quiet(processes: bool = True):
    """No progress bars, no warnings (patched before optimize forks its workers, so they inherit it);
    processes=False swaps backtesting.Pool (a fork-based multiprocessing.Pool on Linux) for a serial map."""
    with warnings.catch_warnings(), mock.patch.object(bt_module, "_tqdm", lambda seq, **_: seq):
        warnings.simplefilter("ignore")
        if processes:
            yield
        else:
            with mock.patch.object(backtesting, "Pool", _SerialPool):
                yield


def _closed_trades(stats: pd.Series, valuation_bar: int) -> pd.DataFrame:
    """The closed trades of a run as our columns; the one closed on the valuation bar was still open."""
    t = stats["_trades"]
    t = t[t["ExitBar"] < valuation_bar]
    return pd.DataFrame(
        {
            "entry_time": pd.to_datetime(t["EntryTime"]),
            "exit_time": pd.to_datetime(t["ExitTime"]),
            "entry_price": t["EntryPrice"].astype(float),
            "exit_price": t["ExitPrice"].astype(float),
        }
    ).reset_index(drop=True)


def optimize_ema_cross(
    bars: pd.DataFrame, fast: list[int], slow: list[int], fees: float, processes: bool = True
) -> dict:
    """Grid-search every (fast, slow) pair with ``Backtest.optimize``, maximizing the final equity.

    ``seconds`` times the optimize call alone (the grid, then backtesting.py's re-run of the best pair);
    data preparation and the EMAs are outside it. ``processes`` lets optimize fork its worker pool
    (one per CPU); False runs every combination in this process.
    """
    fast, slow = [int(f) for f in fast], [int(s) for s in slow]
    data = _prepare(bars, set(fast) | set(slow))
    with _quiet(processes):
        bt = Backtest(data, EmaCross, **_run_kwargs(fees))
        start = time.perf_counter()
        stats, heatmap = bt.optimize(
            fast=fast, slow=slow, maximize="Equity Final [$]", method="grid", return_heatmap=True
        )
        seconds = time.perf_counter() - start
    strategy = stats["_strategy"]
    return {
        "best": {"fast": int(strategy.fast), "slow": int(strategy.slow)},
        "trades": _closed_trades(stats, len(data) - 1),
        "equity_final": float(stats["Equity Final [$]"]) / CASH,  # as a multiple of the initial cash
        "seconds": seconds,
        "combos": int(len(heatmap)),
        "processes": bool(processes),
        "version": backtesting.__version__,
    }


def trades_of(bars: pd.DataFrame, fast: int, slow: int, fees: float) -> pd.DataFrame:
    """The closed trades of one ``Backtest.run`` with these windows, for the trade-by-trade comparison."""
    data = _prepare(bars, {int(fast), int(slow)})
    with _quiet():
        stats = Backtest(data, EmaCross, **_run_kwargs(fees)).run(fast=int(fast), slow=int(slow))
    return _closed_trades(stats, len(data) - 1)


if __name__ == "__main__":
    from tasks.data import load_bars

    eurusd = load_bars("EURUSD", "1h")
    for use_processes in (True, False):
        result = optimize_ema_cross(
            eurusd, list(range(5, 24, 2)), list(range(30, 121, 10)), 0.0001, processes=use_processes
        )
        print(
            f"backtesting {result['version']} processes={use_processes}: best {result['best']}, "
            f"{len(result['trades'])} trades, equity x{result['equity_final']:.6f}, "
            f"{result['combos']} combos in {result['seconds']:.2f} s"
        )

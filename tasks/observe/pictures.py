"""Pictures a person reads beside the numbers: a cycle's equity curve and a campaign's walk-forward folds.

Each is PNG bytes, 1000 x 600 pixels at 100 dpi, drawn with matplotlib's Agg backend (no display).
matplotlib is imported when a picture is drawn, never when the CLI starts. A picture is some tens of KB,
small enough to inline in a Prefect Markdown artifact as a ``data:image/png;base64,...`` image.

- :func:`equity_png` draws ``equity.png`` in a cycle's results folder. It shows the cycle's two
  backtests: the selection part and the held-out part, each a portfolio that starts flat with the
  initial cash. Each has buy and hold of the same bars, its trades' entries and exits, and its drawdown
  underneath; the held-out period is shaded. The curves are the recorded backtest's:
  :func:`cycle_periods` runs the same interpreter on the same bars, features and bounds, and refuses a
  curve whose final value, drawdown, benchmark or trades differ from the cycle's report.
- :func:`folds_png` draws ``folds.png`` beside a campaign's ``report.md``. It shows where each
  walk-forward fold learns and where it is tested, the purge gaps, the sealed holdout, and the chosen
  candidate's out-of-sample Sharpe per fold.

Example (a cycle's two periods, drawn)::

    periods = cycle_periods(strategy, market.bars, frame, bounds, report)
    png = draw_equity(periods, "ema_cross_atr on EURUSD 1h")
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from tasks.splits import SplitBounds

if TYPE_CHECKING:  # the engine (numba, vectorbt) loads when a picture is drawn: `strategies show` stays quick
    import pandas as pd

    from strategy_contract.models import Strategy
    from tasks.backtest import BacktestMetrics, BacktestReport, Simulation

EQUITY_PNG = "equity.png"
FOLDS_PNG = "folds.png"
FIGSIZE = (10.0, 6.0)  # inches; at DPI, 1000 x 600 pixels
DPI = 100
HELD_OUT = "held-out"

STRATEGY_COLOR, BENCHMARK_COLOR, ENTRY_COLOR, EXIT_COLOR = "#1f5fa8", "#8c8c8c", "#2a9d4b", "#c8372d"
HELD_OUT_COLOR, TRAIN_COLOR, TEST_COLOR, PURGE_COLOR = "#f4c56e", "#7aa6d6", "#e8893a", "#d9d9d9"


class PictureMismatch(RuntimeError):
    """A re-simulated curve differs from the backtest the cycle recorded: no picture is drawn of it."""


@dataclass(frozen=True)
class Period:
    """One backtested period of a cycle, bar by bar (positions are bars of this period)."""

    name: str  # "train+validation", "validation" or "held-out"
    times: pd.DatetimeIndex
    equity: np.ndarray  # value at each bar's close; the last after closing what is still open
    benchmark: np.ndarray  # buy and hold from the first bar's open, no costs, the same initial cash
    entries: np.ndarray  # bars where a trade entered (at the open), the one still open included
    exits: np.ndarray  # bars where a closed trade exited
    init_cash: float

    @property
    def held_out(self) -> bool:
        return self.name == HELD_OUT

    def drawdown(self) -> np.ndarray:
        """The fall from the running peak at each bar (the initial cash counts as the first peak), as a
        positive fraction: the series whose maximum is ``BacktestMetrics.max_drawdown``."""
        peak = np.maximum.accumulate(np.concatenate([[self.init_cash], self.equity]))[1:]
        return 1.0 - self.equity / peak


def cycle_periods(
    strategy: Strategy,
    bars: pd.DataFrame,
    frame: pd.DataFrame,
    bounds: SplitBounds,
    report: BacktestReport,
) -> list[Period]:
    """The selection and held-out periods of a cycle's backtest, re-run with the same interpreter
    (:func:`tasks.backtest.simulate`) on the same bars, feature frame and bounds that produced ``report``.

    Raises :class:`PictureMismatch` when a curve disagrees with the report. The report's numbers are
    what the cycle recorded, so a picture of any other backtest would mislead.
    """
    from tasks.backtest import simulate

    fitted = strategy.has_model
    if report.selection_part != SplitBounds.selection_part(fitted):
        raise PictureMismatch(
            f"equity picture: the report's selection part is {report.selection_part!r}, the bounds give "
            f"{SplitBounds.selection_part(fitted)!r}"
        )
    parts = (
        (report.selection_part, bounds.selection(fitted), report.selection),
        (HELD_OUT, bounds.test, report.held_out),
    )
    periods = []
    for name, (start, stop), recorded in parts:
        sim = simulate(strategy, bars, frame, start, stop)
        period, closed = _period(name, sim)
        problems = _differences(period, closed, sim, recorded)
        if name == HELD_OUT and closed != report.held_out_trades:
            problems.append("its closed trades differ from the report's held_out_trades")
        if problems:
            raise PictureMismatch(
                f"equity picture: the {name} curve is not the recorded backtest's: {'; '.join(problems)}"
            )
        periods.append(period)
    return periods


def _period(name: str, sim: Simulation) -> tuple[Period, list]:
    """A period from its simulation, and its closed trades (``tasks.backtest.trade_list``)."""
    from tasks.backtest import open_position, trade_list

    times = sim.bars.index
    position = {str(t): i for i, t in enumerate(times)}  # a Trade names its bars by str(timestamp)
    closed = trade_list(sim)
    still_open = open_position(sim)
    entries = [t.entry_time for t in closed] + ([still_open.entry_time] if still_open else [])
    opens, closes = sim.bars["open"].to_numpy(dtype=float), sim.bars["close"].to_numpy(dtype=float)
    period = Period(
        name=name,
        times=times,
        equity=sim.bar_values()[:, 0],
        benchmark=sim.init_cash * closes / opens[0],
        entries=np.array([position[t] for t in entries], dtype=int),
        exits=np.array([position[t.exit_time] for t in closed], dtype=int),
        init_cash=sim.init_cash,
    )
    return period, closed


def _differences(period: Period, closed: list, sim: Simulation, recorded: BacktestMetrics) -> list[str]:
    """What in ``period`` disagrees with the recorded metrics of that period (empty: none)."""
    from tasks.backtest import open_position

    def same(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)

    problems = []
    span = (len(period.times), str(period.times[0]), str(period.times[-1]))
    if span != (recorded.bars, recorded.start, recorded.end):
        problems.append(f"bars {span} != recorded {(recorded.bars, recorded.start, recorded.end)}")
    if not same(period.equity[-1], recorded.final_value):
        problems.append(f"final value {period.equity[-1]!r} != recorded {recorded.final_value!r}")
    if not same(float(period.drawdown().max()), recorded.max_drawdown):
        problems.append(f"max drawdown {period.drawdown().max()!r} != recorded {recorded.max_drawdown!r}")
    if not same(period.benchmark[-1] / period.init_cash - 1.0, recorded.benchmark_return):
        problems.append("buy and hold differs from the recorded benchmark_return")
    if len(closed) != recorded.trades:
        problems.append(f"{len(closed)} closed trades != recorded {recorded.trades}")
    if open_position(sim) != recorded.open_position:
        problems.append("the position open at the end differs from the recorded one")
    return problems


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})  # no version: same bytes
    plt.close(fig)
    return buffer.getvalue()


def _naive(times: pd.DatetimeIndex) -> np.ndarray:
    """Timestamps as matplotlib reads them: UTC, no time zone."""
    return (times.tz_convert(None) if times.tz is not None else times).to_numpy()


def draw_equity(periods: Sequence[Period], title: str) -> bytes:
    """The equity picture of ``periods`` (see the module docstring) as PNG bytes."""
    plt = _pyplot()
    import matplotlib.dates as mdates
    from matplotlib.ticker import FuncFormatter

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=FIGSIZE, dpi=DPI, sharex=True, height_ratios=(3, 1), layout="constrained"
    )
    trades = sum(len(p.entries) for p in periods)
    marks = {"s": float(np.clip(3000 / max(trades, 1), 4, 22)), "zorder": 3}  # many trades: smaller marks
    for i, p in enumerate(periods):
        x = _naive(p.times)
        hold, strategy, entry, exit_ = ("buy and hold", "strategy", "entry", "exit") if i == 0 else [None] * 4
        top.plot(x, p.benchmark, color=BENCHMARK_COLOR, lw=0.9, label=hold)
        top.plot(x, p.equity, color=STRATEGY_COLOR, lw=1.2, label=strategy)
        top.scatter(x[p.entries], p.equity[p.entries], marker="^", color=ENTRY_COLOR, label=entry, **marks)
        top.scatter(x[p.exits], p.equity[p.exits], marker="v", color=EXIT_COLOR, label=exit_, **marks)
        bottom.fill_between(x, -100.0 * p.drawdown(), 0.0, color=STRATEGY_COLOR, alpha=0.45, lw=0)
        note = "held-out (for you only)" if p.held_out else p.name
        top.text(x[0], 0.985, f" {note}", transform=top.get_xaxis_transform(), va="top", fontsize=8)
        if p.held_out:
            for ax in (top, bottom):
                ax.axvspan(x[0], x[-1], color=HELD_OUT_COLOR, alpha=0.3, lw=0, zorder=0)
    top.axhline(periods[0].init_cash, color="black", lw=0.5, alpha=0.4, zorder=0)  # the initial cash
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    top.set_ylabel("value")
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    top.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=4, frameon=False)
    bottom.set_ylabel("drawdown %")
    locator = mdates.AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for ax in (top, bottom):
        ax.grid(alpha=0.25, lw=0.5)
    return _png(fig)


def equity_png(
    strategy: Strategy,
    bars: pd.DataFrame,
    frame: pd.DataFrame,
    bounds: SplitBounds,
    report: BacktestReport,
) -> bytes:
    """``equity.png`` of a cycle: :func:`cycle_periods` drawn by :func:`draw_equity`, titled with the
    strategy, its market and both periods' returns."""
    periods = cycle_periods(strategy, bars, frame, bounds, report)
    sel, ho = report.selection, report.held_out
    title = (
        f"{strategy.strategy_id} on {strategy.symbol} {strategy.timeframe}: {report.selection_part} "
        f"{sel.total_return:+.1%} (buy and hold {sel.benchmark_return:+.1%}), held-out "
        f"{ho.total_return:+.1%} (buy and hold {ho.benchmark_return:+.1%})"
    )
    return draw_equity(periods, title)


class FoldLike(Protocol):
    """A walk-forward fold (``tasks.campaign.walkforward.Fold``): half-open bar ranges."""

    train: tuple[int, int]
    test: tuple[int, int]


def folds_png(
    folds: Sequence[FoldLike],
    dates: pd.DatetimeIndex,
    sealed_from: pd.Timestamp,
    sealed_bars: int,
    title: str,
    fold_sharpe: Sequence[float | None] | None = None,
    in_sample_sharpe: float | None = None,
    holdout_opened: bool = False,
    holdout_sharpe: float | None = None,
) -> bytes:
    """``folds.png`` of a campaign: on the development bars ``dates`` (positions on the x axis, dates
    on its ticks), each fold's training segment, purge gap and test segment, then the ``sealed_bars``
    of the holdout, from ``sealed_from`` on. Underneath, when given: the chosen candidate's OOS Sharpe
    on each test segment (``fold_sharpe``, None where undefined), its mean in-sample Sharpe, and its
    Sharpe on the holdout once opened. The sealed bars are never read: the holdout is drawn from its
    length alone."""
    plt = _pyplot()

    n = len(dates)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=FIGSIZE, dpi=DPI, sharex=True, height_ratios=(3, 2), layout="constrained"
    )
    for row, fold in enumerate(folds):
        (t0, t1), (s0, s1) = fold.train, fold.test
        top.barh(row, t1 - t0, left=t0, color=TRAIN_COLOR, label="learn" if row == 0 else None)
        top.barh(row, s0 - t1, left=t1, color=PURGE_COLOR, label="purge gap" if row == 0 else None)
        top.barh(row, s1 - s0, left=s0, color=TEST_COLOR, label="test (out of sample)" if row == 0 else None)
    for ax in (top, bottom):
        ax.axvspan(n, n + sealed_bars, color=BENCHMARK_COLOR, alpha=0.35, lw=0, hatch="//", zorder=0)
    top.text(
        n + sealed_bars / 2,
        (len(folds) - 1) / 2,
        "holdout\n(opened once)" if holdout_opened else "holdout\n(sealed)",
        ha="center",
        va="center",
        fontsize=8,
    )
    top.set_yticks(range(len(folds)), [f"fold {i + 1}" for i in range(len(folds))])
    top.set_ylim(len(folds) - 0.4, -0.6)
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    top.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=3, frameon=False)

    if fold_sharpe is None:
        bottom.text(0.5, 0.5, "no scored candidate", transform=bottom.transAxes, ha="center", fontsize=9)
    else:
        for fold, sharpe in zip(folds, fold_sharpe, strict=True):
            _value_bar(bottom, *fold.test, sharpe, TEST_COLOR)
        if in_sample_sharpe is not None and math.isfinite(in_sample_sharpe):
            label = f"in-sample Sharpe (mean) {in_sample_sharpe:.2f}"
            bottom.axhline(in_sample_sharpe, color=TRAIN_COLOR, ls="--", lw=1.2, label=label)
        if holdout_opened:
            _value_bar(bottom, n, n + sealed_bars, holdout_sharpe, BENCHMARK_COLOR, "holdout Sharpe")
        if bottom.get_legend_handles_labels()[0]:
            bottom.legend(loc="lower left", fontsize=8, frameon=False)
    bottom.axhline(0.0, color="black", lw=0.6)
    bottom.set_ylabel("OOS Sharpe")
    edges = sorted({0, n, *(f.test[0] for f in folds)})
    bottom.set_xticks(
        [*edges, n + sealed_bars],
        [f"{(dates[e] if e < n else sealed_from):%Y-%m-%d}" for e in edges] + [f"+{sealed_bars} bars"],
        rotation=30,
        ha="right",
        fontsize=8,
    )
    bottom.set_xlim(0, n + sealed_bars)
    for ax in (top, bottom):
        ax.grid(axis="x", alpha=0.25, lw=0.5)
    return _png(fig)


def _value_bar(ax, start: int, stop: int, value: float | None, color: str, label: str | None = None) -> None:
    """A bar over the bars [start, stop) with its value written on it; "n/a" when undefined."""
    if value is None or not math.isfinite(value):
        ax.text((start + stop) / 2, 0, "n/a", ha="center", va="bottom", fontsize=8)
        return
    ax.bar(start, value, width=stop - start, align="edge", color=color, edgecolor="white", label=label)
    where = "bottom" if value >= 0 else "top"
    ax.text((start + stop) / 2, value, f"{value:.2f}", ha="center", va=where, fontsize=8)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's header; refuses anything that is not a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG: its first bytes are not the PNG signature and IHDR chunk")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")

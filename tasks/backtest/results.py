"""What a backtest reports: its trades, the metrics of a period, and the report of a cycle."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, field_serializer


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

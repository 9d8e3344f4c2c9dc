"""The backtester on a series small enough to check by hand: signals at the close of bar t fill at the
open of bar t+1, with fees and slippage on every fill, and stops from the fill price."""

from __future__ import annotations

import pandas as pd
import pytest

from strategy_contract import parse_strategy
from tasks.backtest import portfolio_metrics, run_backtest, simulate, trade_list
from tasks.features import feature_frame

DAYS = pd.date_range("2024-01-01", periods=8, freq="D", tz="UTC")
BARS = pd.DataFrame(
    {
        "open": [100, 100.5, 102, 108, 106, 101, 102.5, 103],
        "high": [101, 102, 107, 109, 107, 103, 104, 104],
        "low": [99, 100, 101, 106, 103, 100, 102, 102],
        "close": [100, 101, 106, 107, 104, 102, 103, 103],
        "volume": 1.0,
    },
    index=DAYS,
).astype(float)
FEES, SLIP, CASH = 0.001, 0.002, 1000.0


def toy(stop_loss=None):
    return parse_strategy(
        {
            "strategy_id": "hand_check",
            "thesis": "buy a close above 105, sell a close below 103",
            "markets": ["TEST"],
            "timeframes": ["1d"],
            "indicators": [{"id": "sma_2", "type": "sma", "params": {"window": 2}}],
            "entry_rules": [{"left": "close", "op": ">", "right": 105}],
            "exit_rules": [{"left": "close", "op": "<", "right": 103}],
            "risk_model": {"fees": FEES, "slippage": SLIP, "init_cash": CASH, "stop_loss": stop_loss},
        }
    )


def run(strategy):
    pf, year = simulate(strategy, BARS, feature_frame(BARS, strategy), 0, len(BARS), per_year=365)
    return pf, year


def test_rule_exit_fills_at_next_open_with_costs():
    pf, year = run(toy())
    [trade] = trade_list(pf)
    # Close 106 > 105 on Jan 3 -> buy at the Jan 4 open 108, paying 0.2% slippage.
    entry = 108 * (1 + SLIP)
    size = CASH / (entry * (1 + FEES))  # all cash, fee included
    # Close 102 < 103 on Jan 6 -> sell at the Jan 7 open 102.5, less 0.2% slippage.
    exit_ = 102.5 * (1 - SLIP)
    fees = size * entry * FEES + size * exit_ * FEES
    pnl = size * (exit_ - entry) - fees
    assert trade.entry_time.startswith("2024-01-04") and trade.exit_time.startswith("2024-01-07")
    assert trade.entry_price == pytest.approx(entry)
    assert trade.exit_price == pytest.approx(exit_)
    assert trade.size == pytest.approx(size)
    assert trade.fees == pytest.approx(fees)
    assert trade.pnl == pytest.approx(pnl)

    m = portfolio_metrics(pf, year)
    assert m.final_value == pytest.approx(CASH + pnl)
    assert m.total_return == pytest.approx(pnl / CASH)
    assert m.trades == 1 and m.win_rate == 0.0
    assert m.exposure == pytest.approx(3 / 8)  # held through Jan 4, 5, 6
    assert m.benchmark_return == pytest.approx(103 / 100 - 1)


def test_stop_loss_from_fill_price_hits_inside_the_bar():
    pf, _ = run(toy(stop_loss={"kind": "percent", "value": 0.03}))
    [trade] = trade_list(pf)
    entry = 108 * (1 + SLIP)
    stop = entry * (1 - 0.03)  # 104.97: the Jan 5 bar opens at 106 and trades down to 103
    assert trade.exit_time.startswith("2024-01-05")
    assert trade.exit_price == pytest.approx(stop * (1 - SLIP))


def test_signal_on_the_last_bar_is_never_filled():
    bars = BARS.copy()
    bars.loc[bars.index[-1], ["close", "high"]] = [110.0, 111.0]  # entry signal on the final close only
    strategy = toy()
    strategy = strategy.model_copy(
        update={
            "exit_rules": [],
            "risk_model": strategy.risk_model.model_copy(update={"stop_loss": None, "take_profit": None}),
        }
    )
    frame = feature_frame(bars, strategy)
    pf, _ = simulate(strategy, bars, frame, 0, len(bars), per_year=365)
    entries = [t.entry_time for t in trade_list(pf)]
    assert all(not e.startswith("2024-01-08") for e in entries)


def test_in_sample_and_held_out_are_separate_periods():
    strategy = toy()
    report = run_backtest(strategy, BARS, feature_frame(BARS, strategy), (0, 4), (4, 8))
    assert report.in_sample.end.startswith("2024-01-04") and report.out_of_sample.start.startswith(
        "2024-01-05"
    )
    assert report.in_sample.bars == 4 and report.out_of_sample.bars == 4

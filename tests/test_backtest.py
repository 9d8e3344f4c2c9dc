"""The backtester on series small enough to check by hand.

Every expected number below is computed here from the bars, with the cost model of the contract:
a buy fills at price x (1 + SLIP), a sell at price x (1 - SLIP), and each fill pays FEES x its value.
A long bought with all of the cash C at fill price E has size C / (E x (1 + FEES)).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import STRATEGIES

from strategy_contract import parse_strategy
from strategy_contract.io import atomic_write_json
from strategy_contract.models import MLPModel
from tasks.backtest import (
    BacktestReport,
    bars_per_year,
    portfolio_metrics,
    run_backtest,
    simulate,
    trade_list,
)
from tasks.features import feature_frame
from tasks.splits import SplitBounds

FEES, SLIP, CASH = 0.001, 0.002, 1000.0
FLAT = (100, 101, 99, 100)


def make_bars(*ohlc) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(ohlc), freq="D", tz="UTC")
    bars = pd.DataFrame(list(ohlc), columns=["open", "high", "low", "close"], index=index)
    return bars.assign(volume=1.0).astype(float)


def contract(**risk):
    """Enter when the column `go` is positive, exit when `out` is; `atr_3` feeds ATR stops."""
    return parse_strategy(
        {
            "strategy_id": "hand_check",
            "thesis": "hand-made entry and exit signals to check the fills",
            "markets": ["TEST"],
            "timeframes": ["1d"],
            "indicators": [
                {"id": "go", "type": "sma", "params": {"window": 2}},
                {"id": "out", "type": "sma", "params": {"window": 2}},
                {"id": "atr_3", "type": "atr", "params": {"window": 3}},
            ],
            "entry_rules": [{"left": "go", "op": ">", "right": 0}],
            "exit_rules": [{"left": "out", "op": ">", "right": 0}],
            "risk_model": {"fees": FEES, "slippage": SLIP, "init_cash": CASH, **risk},
        }
    )


def make_frame(bars, strategy, go=(), out=(), atr=None) -> pd.DataFrame:
    """The feature frame with hand-set signals: `go`/`out` hold at the closes of the listed bars."""
    frame = feature_frame(bars, strategy)
    frame["go"] = [1.0 if i in go else 0.0 for i in range(len(bars))]
    frame["out"] = [1.0 if i in out else 0.0 for i in range(len(bars))]
    if atr is not None:
        frame["atr_3"] = np.asarray(atr, dtype=float)
    return frame


def run(bars, strategy, **signals):
    return simulate(strategy, bars, make_frame(bars, strategy, **signals), 0, len(bars))


def day(bars, i) -> str:
    return str(bars.index[i])


def long_size(cash, entry):
    return cash / (entry * (1 + FEES))


def buy(price):
    return price * (1 + SLIP)


def sell(price):
    return price * (1 - SLIP)


def test_signal_at_a_close_fills_at_the_next_open_with_costs():
    bars = make_bars(FLAT, FLAT, (104, 106, 103, 105), (105, 107, 104, 106), (110, 111, 109, 110), FLAT)
    sim = run(bars, contract(), go={1}, out={3})
    [trade] = trade_list(sim)
    # go at the close of bar 1 -> buy at bar 2's open 104, not at bar 1's open 100
    entry, exit_ = buy(104), sell(110)  # out at the close of bar 3 -> sell at bar 4's open 110
    size = long_size(CASH, entry)
    fees = size * entry * FEES + size * exit_ * FEES
    pnl = size * (exit_ - entry) - fees
    assert (trade.entry_time, trade.exit_time) == (day(bars, 2), day(bars, 4))
    assert trade.entry_price == pytest.approx(entry, rel=1e-12)
    assert trade.exit_price == pytest.approx(exit_, rel=1e-12)
    assert trade.size == pytest.approx(size, rel=1e-12)
    assert trade.fees == pytest.approx(fees, rel=1e-12)
    assert trade.pnl == pytest.approx(pnl, rel=1e-12)
    assert trade.return_pct == pytest.approx(pnl / (size * entry), rel=1e-12)

    m = portfolio_metrics(sim, 365.0)
    assert m.final_value == pytest.approx(CASH + pnl, rel=1e-12)
    assert m.total_return == pytest.approx(pnl / CASH, rel=1e-12)
    assert m.fees_paid == pytest.approx(fees, rel=1e-12)
    assert (m.trades, m.win_rate, m.open_position) == (1, 1.0, None)
    assert m.exposure == pytest.approx(2 / 6)  # held after the open of bars 2 and 3; sold at bar 4's open
    assert m.benchmark_return == pytest.approx(100 / 100 - 1)


def test_an_exit_rule_wins_over_an_entry_rule_at_the_same_close():
    bars = make_bars(FLAT, FLAT, FLAT, FLAT, FLAT, FLAT)
    sim = run(bars, contract(), go={0, 1, 3}, out={1, 3})
    [trade] = trade_list(sim)  # in a position at close 1: exit at bar 2; flat at close 3: no entry
    assert (trade.entry_time, trade.exit_time) == (day(bars, 1), day(bars, 2))
    assert portfolio_metrics(sim, 365.0).open_position is None


def test_stop_is_live_on_the_entry_bar():
    # entry at bar 1's open 100 -> fill 100.2; a 3% stop sits at 97.194 and bar 1 trades down to 95
    bars = make_bars(FLAT, (100, 101, 95, 99), (99, 100, 98, 99), (99, 100, 98, 99))
    sim = run(bars, contract(stop_loss={"kind": "percent", "value": 0.03}), go={0})
    [trade] = trade_list(sim)
    entry = buy(100)
    stop = entry * (1 - 0.03)
    size = long_size(CASH, entry)
    assert (trade.entry_time, trade.exit_time) == (day(bars, 1), day(bars, 1))
    assert trade.exit_price == pytest.approx(sell(stop), rel=1e-12)
    fees = size * entry * FEES + size * sell(stop) * FEES
    assert trade.pnl == pytest.approx(size * (sell(stop) - entry) - fees, rel=1e-12)
    assert portfolio_metrics(sim, 365.0).exposure == pytest.approx(1 / 4)  # held inside bar 1 only


def test_a_gap_through_the_stop_exits_at_the_open():
    bars = make_bars(FLAT, (100, 101, 99, 100.5), (90, 92, 89, 91), (91, 92, 90, 91))
    sim = run(bars, contract(stop_loss={"kind": "percent", "value": 0.03}), go={0})
    [trade] = trade_list(sim)
    entry = buy(100)  # stop at 97.194; bar 2 opens at 90, below it
    size = long_size(CASH, entry)
    assert (trade.entry_time, trade.exit_time) == (day(bars, 1), day(bars, 2))
    assert trade.exit_price == pytest.approx(sell(90), rel=1e-12)
    fees = size * entry * FEES + size * sell(90) * FEES
    assert trade.pnl == pytest.approx(size * (sell(90) - entry) - fees, rel=1e-12)


def test_atr_stop_uses_the_signal_bars_atr_from_the_fill_price():
    atr = [2.0, 5.0, 5.0, 5.0]  # signal bar 0: 2 x ATR 2 = 4 below the fill; bar 1's ATR would give 10
    bars = make_bars(FLAT, (100, 101, 98, 100), (99, 99.5, 95, 96), (96, 97, 95, 96))
    strategy = contract(stop_loss={"kind": "atr", "indicator": "atr_3", "multiple": 2})
    sim = run(bars, strategy, go={0}, atr=atr)
    [trade] = trade_list(sim)
    entry = buy(100)
    stop = (
        entry - 2 * 2.0
    )  # 96.2, as Pine's strategy.exit(loss=): bar 1's low 98 misses it, bar 2's 95 hits it
    assert (trade.entry_time, trade.exit_time) == (day(bars, 1), day(bars, 2))
    assert trade.exit_price == pytest.approx(sell(stop), rel=1e-12)


def test_atr_take_profit_and_the_stop_first_when_a_bar_reaches_both():
    bars = make_bars(
        FLAT,
        (100, 103, 99.5, 102),  # entry 100.2; take-profit 106.2 (3 x ATR 2) and stop 97.194 both missed
        (102, 107, 101, 106),  # high 107 reaches the take-profit
        (106, 107, 105, 106),  # go again at this close
        (106, 115, 100, 108),  # entry 106.212; this bar reaches the stop and the take-profit
        (108, 109, 107, 108),
    )
    atr = [2.0, 5.0, 5.0, 2.0, 5.0, 5.0]
    strategy = contract(
        stop_loss={"kind": "percent", "value": 0.03},
        take_profit={"kind": "atr", "indicator": "atr_3", "multiple": 3},
    )
    sim = run(bars, strategy, go={0, 3}, atr=atr)
    first, second = trade_list(sim)
    entry1 = buy(100)
    take = entry1 + 3 * 2.0  # multiple x the signal bar's ATR, in price, from the fill
    assert (first.entry_time, first.exit_time) == (day(bars, 1), day(bars, 2))
    assert first.exit_price == pytest.approx(sell(take), rel=1e-12)
    size1 = long_size(CASH, entry1)
    pnl1 = size1 * (sell(take) - entry1) - size1 * (entry1 + sell(take)) * FEES
    assert first.pnl == pytest.approx(pnl1, rel=1e-12)
    entry2 = buy(106)
    assert (second.entry_time, second.exit_time) == (day(bars, 4), day(bars, 4))
    assert second.exit_price == pytest.approx(sell(entry2 * 0.97), rel=1e-12)  # the stop, not 112.5
    assert second.size == pytest.approx(long_size(CASH + pnl1, entry2), rel=1e-12)


def test_trailing_stop_follows_the_high_since_entry_a_fixed_distance_behind():
    bars = make_bars(FLAT, (100, 110, 99.5, 108), (107, 108, 104, 105), (105, 106, 104, 105))
    strategy = contract(stop_loss={"kind": "percent", "value": 0.05}, trailing_stop=True)
    sim = run(bars, strategy, go={0})
    [trade] = trade_list(sim)
    # fixed, the stop would stay at 100.2 x 0.95 = 95.19; trailing, it keeps its distance at the fill
    # (5% of 100.2 = 5.01, as TradingView's trail_offset and cTrader's trailing stop), so bar 1's high 110
    # lifts it to 104.99 (not to 110 x 0.95); bar 1 goes to its low first (nearer the open), so its own
    # close 108 stays above it, and bar 2's low 104 takes it
    assert (trade.entry_time, trade.exit_time) == (day(bars, 1), day(bars, 2))
    assert trade.exit_price == pytest.approx(sell(110 - 0.05 * buy(100)), rel=1e-12)


def test_a_trailing_stop_moves_inside_the_bar_that_makes_the_new_high():
    # bar 1 opens at 100, goes to its high 110 first (nearer the open than the low 88): the stop,
    # lifted to 110 - 5.01 on the way up, is taken on the way down in the same bar
    bars = make_bars(FLAT, (100, 110, 88, 101), FLAT)
    strategy = contract(stop_loss={"kind": "percent", "value": 0.05}, trailing_stop=True)
    [trade] = trade_list(run(bars, strategy, go={0}))
    assert (trade.entry_time, trade.exit_time) == (day(bars, 1), day(bars, 1))
    assert trade.exit_price == pytest.approx(sell(110 - 0.05 * buy(100)), rel=1e-12)


@pytest.mark.parametrize(
    ("bar", "exit_kind"),
    [
        ((100, 104, 90, 95), "take"),  # the high is nearer the open: open -> high -> low
        ((100, 111, 97, 105), "stop"),  # the low is nearer the open: open -> low -> high
    ],
)
def test_a_bar_reaching_both_stop_and_take_exits_at_the_one_its_path_reaches_first(bar, exit_kind):
    bars = make_bars(FLAT, bar, FLAT)
    strategy = contract(
        stop_loss={"kind": "percent", "value": 0.02}, take_profit={"kind": "percent", "value": 0.03}
    )
    [trade] = trade_list(run(bars, strategy, go={0}))
    entry = buy(100)
    level = entry * 1.03 if exit_kind == "take" else entry * 0.98
    assert (trade.entry_time, trade.exit_time) == (day(bars, 1), day(bars, 1))
    assert trade.exit_price == pytest.approx(sell(level), rel=1e-12)


@pytest.mark.parametrize(
    ("risk", "bar1", "bar2", "gap_open"),
    [
        # trailing: bar 1 goes to its low 99.5 first (nearer the open), then to 110, which lifts the
        # stop to 110 - 5.01 = 104.99; bar 2 opens at 104.7, below it (a stop trailing 5% of the high,
        # 104.5, would not be reached by bar 2 at all)
        (
            {"stop_loss": {"kind": "percent", "value": 0.05}, "trailing_stop": True},
            (100, 110, 99.5, 106),
            (104.7, 105, 104.6, 104.8),
            104.7,
        ),
        # stop 98.196 and take-profit 103.206, both missed by bar 1; bar 2 opens at 90, below the stop
        (
            {
                "stop_loss": {"kind": "percent", "value": 0.02},
                "take_profit": {"kind": "percent", "value": 0.03},
            },
            (100, 101, 99, 100.5),
            (90, 92, 89, 91),
            90,
        ),
    ],
)
def test_with_the_path_rows_a_gap_through_the_stop_still_exits_at_the_open(risk, bar1, bar2, gap_open):
    bars = make_bars(FLAT, bar1, bar2, FLAT)
    sim = run(bars, contract(**risk), go={0})
    assert sim.rows_per_bar == 4
    [trade] = trade_list(sim)
    assert (trade.entry_time, trade.exit_time) == (day(bars, 1), day(bars, 2))
    assert trade.exit_price == pytest.approx(sell(gap_open), rel=1e-12)


def test_short_trades_with_half_the_equity():
    bars = make_bars(
        FLAT,
        (100, 101, 97, 98),  # short at 99.8; stop 102.794 missed
        (97, 98, 95, 96),  # out at this close
        (95, 96, 94, 95),  # cover at 95.19; go again at this close
        (95, 99, 94, 98),  # short at 94.81; its stop 97.6543 is hit by this bar's high 99
        (98, 99, 97, 98),
    )
    strategy = contract(direction="short", position_size=0.5, stop_loss={"kind": "percent", "value": 0.03})
    sim = run(bars, strategy, go={0, 3}, out={2})
    first, second = trade_list(sim)

    entry1, exit1 = sell(100), buy(95)
    size1 = 0.5 * CASH / (entry1 * (1 + FEES))
    pnl1 = size1 * (entry1 - exit1) - size1 * (entry1 + exit1) * FEES
    assert (first.direction, first.entry_time, first.exit_time) == ("short", day(bars, 1), day(bars, 3))
    assert first.entry_price == pytest.approx(entry1, rel=1e-12)
    assert first.exit_price == pytest.approx(exit1, rel=1e-12)
    assert first.size == pytest.approx(size1, rel=1e-12)
    assert first.pnl == pytest.approx(pnl1, rel=1e-12)

    entry2 = sell(95)
    exit2 = buy(entry2 * 1.03)
    size2 = 0.5 * (CASH + pnl1) / (entry2 * (1 + FEES))
    pnl2 = size2 * (entry2 - exit2) - size2 * (entry2 + exit2) * FEES
    assert (second.entry_time, second.exit_time) == (day(bars, 4), day(bars, 4))
    assert second.exit_price == pytest.approx(exit2, rel=1e-12)
    assert second.pnl == pytest.approx(pnl2, rel=1e-12)
    m = portfolio_metrics(sim, 365.0)
    assert m.final_value == pytest.approx(CASH + pnl1 + pnl2, rel=1e-12)


def test_metrics_from_the_close_to_close_equity_annualised_with_bars_per_year():
    bars = make_bars(
        FLAT,  # go at this close, before the period: filled at the period's first open
        (100, 101, 96, 97),
        (97, 99, 96, 98),  # out
        (99, 100, 98, 99),  # sell at 98.802 (a loss); go
        (99, 104, 98, 103),
        (103, 107, 102, 106),  # out
        (106, 107, 104, 105),  # sell at 105.788 (a win)
        (105, 106, 104, 105),
    )
    strategy = contract()
    frame = make_frame(bars, strategy, go={0, 3}, out={2, 5})
    bounds = SplitBounds(train=(0, 4), validation=(4, 8), test=(1, 8))
    report = run_backtest(strategy, bars, frame, bounds)
    m = report.held_out

    e1, x1, e2, x2 = buy(100), sell(99), buy(99), sell(106)
    s1 = long_size(CASH, e1)
    c1 = s1 * x1 * (1 - FEES)
    s2 = long_size(c1, e2)
    c2 = s2 * x2 * (1 - FEES)
    value = np.array([s1 * 97, s1 * 98, c1, s2 * 103, s2 * 106, c2, c2])  # at the closes of bars 1..7
    r = value / np.append(CASH, value[:-1]) - 1
    per_year = 7 / (7 / 365.25)  # 8 daily bars: 7 bar intervals in 7 days
    sharpe = r.mean() / r.std(ddof=1) * math.sqrt(per_year)
    sortino = r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(per_year)
    curve = np.append(CASH, value)
    drawdown = np.max(1 - curve / np.maximum.accumulate(curve))  # from the initial cash: 1 - s1 * 97 / CASH
    pnl1 = s1 * (x1 - e1) - s1 * (e1 + x1) * FEES
    pnl2 = s2 * (x2 - e2) - s2 * (e2 + x2) * FEES

    assert report.bars_per_year == pytest.approx(per_year, rel=1e-12) == bars_per_year(bars.index)
    assert (m.start, m.end, m.bars) == (day(bars, 1), day(bars, 7), 7)
    assert m.sharpe == pytest.approx(sharpe, rel=1e-9)
    assert m.sortino == pytest.approx(sortino, rel=1e-9)
    assert m.max_drawdown == pytest.approx(drawdown, rel=1e-12)
    assert m.max_drawdown == pytest.approx(1 - s1 * 97 / CASH, rel=1e-12)
    assert m.total_return == pytest.approx(c2 / CASH - 1, rel=1e-12)
    assert (m.trades, m.win_rate) == (2, 0.5)
    assert m.gross_profit == pytest.approx(pnl2, rel=1e-12)
    assert m.gross_loss == pytest.approx(-pnl1, rel=1e-12)
    assert m.profit_factor == pytest.approx(pnl2 / -pnl1, rel=1e-12)
    assert m.fees_paid == pytest.approx((s1 * (e1 + x1) + s2 * (e2 + x2)) * FEES, rel=1e-12)
    assert m.exposure == pytest.approx(4 / 7)  # held after the open of bars 1, 2, 4, 5
    assert m.benchmark_return == pytest.approx(105 / 100 - 1)
    assert [t.pnl for t in report.held_out_trades] == pytest.approx([pnl1, pnl2], rel=1e-12)


def test_flat_equity_has_no_sharpe():
    bars = make_bars(FLAT, FLAT, FLAT, FLAT)
    m = portfolio_metrics(run(bars, contract()), 365.0)
    assert (m.sharpe, m.sortino, m.win_rate, m.profit_factor, m.trades) == (None, None, None, None, 0)
    assert (m.total_return, m.max_drawdown, m.exposure) == (0.0, 0.0, 0.0)


def test_a_position_open_at_the_end_is_valued_with_its_exit_costs_but_not_counted():
    bars = make_bars(
        FLAT, (100, 103, 99, 102), (102, 104, 101, 103), (103, 105, 102, 104), (104, 106, 103, 105)
    )
    strategy = contract()
    frame = make_frame(bars, strategy, go={0, 2}, out={1})
    report = run_backtest(strategy, bars, frame, SplitBounds(train=(0, 2), validation=(2, 5), test=(0, 5)))
    m = report.held_out

    e1, x1, e2 = buy(100), sell(102), buy(103)
    s1 = long_size(CASH, e1)
    c1 = s1 * x1 * (1 - FEES)
    s2 = long_size(c1, e2)
    valued = s2 * sell(105) * (1 - FEES)  # closed at the last close 105, slippage and fee paid
    assert m.trades == 1 and len(report.held_out_trades) == 1
    assert report.held_out_trades[0].exit_time == day(bars, 2)
    held = m.open_position
    assert held is not None and held.status == "open" and held.exit_time is None
    assert held.entry_time == day(bars, 3)
    assert held.entry_price == pytest.approx(e2, rel=1e-12)
    assert held.exit_price == pytest.approx(sell(105), rel=1e-12)
    assert held.pnl == pytest.approx(valued - c1, rel=1e-12)
    assert m.final_value == pytest.approx(valued, rel=1e-12)
    assert m.total_return == pytest.approx(valued / CASH - 1, rel=1e-12)
    assert m.win_rate == 1.0 and m.profit_factor == math.inf  # over the closed trade only


def test_a_signal_at_the_last_close_is_never_filled():
    bars = make_bars(FLAT, FLAT, FLAT, FLAT)
    m = portfolio_metrics(run(bars, contract(), go={3}), 365.0)
    assert m.trades == 0 and m.open_position is None and m.fees_paid == 0.0


def _strict(constant):
    raise ValueError(f"not strict JSON: {constant}")


def test_winners_only_profit_factor_is_infinity_and_strict_json(tmp_path):
    bars = make_bars(FLAT, FLAT, (104, 106, 103, 105), (105, 107, 104, 106), (110, 111, 109, 110), FLAT)
    strategy = contract()
    frame = make_frame(bars, strategy, go={1}, out={3})
    report = run_backtest(strategy, bars, frame, SplitBounds(train=(0, 3), validation=(3, 6), test=(0, 6)))
    assert report.held_out.profit_factor == math.inf
    assert report.held_out.gross_loss == 0.0 and report.held_out.gross_profit > 0

    text = json.dumps(report.model_dump(mode="json"))
    data = json.loads(text, parse_constant=_strict)
    assert data["held_out"]["profit_factor"] == "Infinity"
    atomic_write_json(tmp_path / "backtest.json", report.model_dump(mode="json"))
    written = json.loads((tmp_path / "backtest.json").read_text(), parse_constant=_strict)
    assert BacktestReport.model_validate(written).held_out.profit_factor == math.inf
    assert BacktestReport.model_validate_json(report.model_dump_json()) == report


def test_selection_and_held_out_are_separate_periods():
    bars = make_bars(*[FLAT] * 12)
    strategy = contract()
    frame = make_frame(bars, strategy)
    bounds = SplitBounds(train=(0, 4), validation=(5, 8), test=(9, 12))
    report = run_backtest(strategy, bars, frame, bounds)
    assert report.selection_part == "train+validation"
    assert (report.selection.start, report.selection.end) == (day(bars, 0), day(bars, 7))
    assert (report.held_out.start, report.held_out.end) == (day(bars, 9), day(bars, 11))

    fitted = strategy.model_copy(update={"model": MLPModel()})  # a model is judged on validation only
    report = run_backtest(fitted, bars, frame, bounds)
    assert report.selection_part == "validation"
    assert (report.selection.start, report.selection.bars) == (day(bars, 5), 3)


@pytest.mark.parametrize("direction", ["long", "short"])
def test_the_rust_kernels_give_the_numba_engines_exact_result(direction):
    """vectorbt-rust runs the simulator without a per-process JIT; on a real market, with ATR stops, a
    take-profit and a trailing stop, it must give vectorbt's reference (numba) engine's report exactly."""
    import vectorbt as vbt
    import yaml

    from tasks.data import load_bars
    from tasks.splits import split_bounds

    data = yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text())
    data["risk_model"].update(direction=direction, trailing_stop=True)
    strategy = parse_strategy(data)
    bars = load_bars(strategy.symbol, strategy.timeframe)
    frame = feature_frame(bars, strategy)
    bounds = split_bounds(len(bars), strategy.data)

    engine = vbt.settings["engine"]
    try:
        vbt.settings["engine"] = "rust"
        rust = run_backtest(strategy, bars, frame, bounds)
        vbt.settings["engine"] = "numba"
        numba = run_backtest(strategy, bars, frame, bounds)
    finally:
        vbt.settings["engine"] = engine
    assert rust.selection.trades > 20 and rust == numba

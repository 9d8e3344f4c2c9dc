"""Synthetic markets (tests/synthetic_markets.py): reproducible, well-formed bars that the loader reads,
a null market with the stylised facts of real returns and no edge, and a trend market whose edge the
shipped EMA crossover finds after costs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import STRATEGIES
from synthetic_markets import null_bars, trend_bars, write_market

from strategy_contract import load_strategy
from tasks.backtest import bars_per_year
from tasks.data import list_datasets, load_market
from tasks.settings import enforce_operator_rules
from tasks.sweep.evaluate import evaluate_combos

SEEDS = (0, 1, 2)
SYMBOL, TIMEFRAME = "EURUSD", "1h"  # an fx symbol: the operator's fx cost floors (1 + 0.5 bp a fill)
# window pairs (fast, slow) of the shipped contract's EMA crossover; 12/48 is the contract's own
PAIRS = [(5, 20), (8, 32), (10, 30), (10, 50), (12, 48), (15, 60), (20, 60), (20, 100), (25, 100), (30, 120)]
SENSIBLE = [(10, 50), (12, 48), (20, 100)]


def log_returns(bars: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log(bars["close"].to_numpy()))


def autocorr(x: np.ndarray, lag: int = 1) -> float:
    return float(np.corrcoef(x[:-lag], x[lag:])[0, 1])


def ema_sharpes(bars, pairs, tmp_path, monkeypatch, late=False, costs=True) -> pd.Series:
    """Annualised Sharpe of the shipped EMA crossover (with its ATR stop and take-profit) per window
    pair, on the bars written and read back as EURUSD 1h; over all bars or the later 20%."""
    folder = tmp_path / "market"
    write_market(folder, SYMBOL, TIMEFRAME, bars)
    monkeypatch.setenv("STRATLAB_DATA_DIR", str(folder))
    strategy = load_strategy(STRATEGIES / "ema_cross_atr.yaml").on_market(SYMBOL, TIMEFRAME)
    strategy = enforce_operator_rules(strategy)
    if not costs:
        risk = strategy.risk_model.model_copy(update={"fees": 0.0, "slippage": 0.0})
        strategy = strategy.model_copy(update={"risk_model": risk})
    loaded = load_market(SYMBOL, TIMEFRAME).bars
    combos = pd.DataFrame(pairs, columns=["ema_fast.window", "ema_slow.window"])
    n = len(loaded)
    table = evaluate_combos(
        strategy, loaded, combos, int(0.8 * n) if late else 0, n, bars_per_year(loaded.index)
    )
    return pd.Series(table["sharpe"].to_numpy(), index=[f"{f}/{s}" for f, s in pairs])


@pytest.mark.parametrize("make", [null_bars, trend_bars])
def test_bars_are_reproducible_per_seed(make):
    pd.testing.assert_frame_equal(make(0), make(0))
    assert not np.allclose(make(0)["close"], make(1)["close"])
    assert not make(0).index.equals(make(0, start="2016-01-01").index)


def test_trend_market_is_the_null_market_plus_a_drift():
    """One seed, the same shocks: the trend market differs from the null one only by its drift."""
    null, trend = null_bars(3), trend_bars(3)
    assert null.index.equals(trend.index)
    drift = log_returns(trend) - log_returns(null)
    assert not np.allclose(drift, 0)
    assert np.count_nonzero(np.diff(np.sign(drift))) < len(drift) / 40  # long legs, not noise


@pytest.mark.parametrize("timeframe, vol", [("1h", 0.001), ("1d", 0.01)])
@pytest.mark.parametrize("make", [null_bars, trend_bars])
def test_bars_are_well_formed(make, timeframe, vol):
    bars = make(5, n=3000, timeframe=timeframe)
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert len(bars) == 3000 and isinstance(bars.index, pd.DatetimeIndex) and str(bars.index.tz) == "UTC"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    if timeframe == "1h":
        assert (bars.index.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()
    else:
        assert (bars.index.dayofweek < 5).all()
        assert bars.index.to_series().diff().dropna().max() == pd.Timedelta(days=3)
    o, h, lo, c, v = (bars[k].to_numpy() for k in bars.columns)
    assert (np.column_stack([o, h, lo, c]) > 0).all() and (v > 0).all()
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all() and (h > lo).all()
    gap = np.log(o[1:] / c[:-1])  # open = previous close plus a small gap
    assert np.abs(gap).max() < vol and np.abs(gap).mean() < 0.1 * vol  # typical bar: ~0.75 vol
    assert 0.7 * vol < np.std(log_returns(bars)) < 1.4 * vol


def test_loader_reads_the_written_folder(tmp_path, monkeypatch):
    hourly, daily = trend_bars(0, n=2000), null_bars(1, n=500, timeframe="1d")
    path = write_market(tmp_path, "EURUSD", "1h", hourly)
    write_market(tmp_path, "SPX", "1d", daily)
    write_market(tmp_path, "EURUSD", "1h", hourly)  # rewriting replaces the file and its record
    assert path == tmp_path / "EURUSD_1h.parquet"
    monkeypatch.setenv("STRATLAB_DATA_DIR", str(tmp_path))

    for (symbol, timeframe), bars in {("EURUSD", "1h"): hourly, ("SPX", "1d"): daily}.items():
        market = load_market(symbol, timeframe)
        assert market.source == str(tmp_path)
        assert market.bars.index.equals(bars.index)
        np.testing.assert_array_equal(market.bars["close"].to_numpy(), bars["close"].to_numpy())
        pd.testing.assert_frame_equal(market.bars, bars, check_names=False, check_freq=False)

    infos = {(i.symbol, i.timeframe): i for i in list_datasets()}
    assert set(infos) == {("EURUSD", "1h"), ("SPX", "1d")}
    assert infos["EURUSD", "1h"].rows == 2000 and infos["SPX", "1d"].rows == 500
    for info in infos.values():
        assert "synthetic_markets" in info.source and "modified" not in info.source


@pytest.mark.parametrize("seed", SEEDS)
def test_null_returns_have_fat_tails_and_volatility_clustering(seed):
    r = log_returns(null_bars(seed))
    r = r - r.mean()
    kurtosis = np.mean(r**4) / np.mean(r**2) ** 2
    assert kurtosis > 3 + 5  # Student-t(4) shocks: far fatter tails than the normal's 3
    assert autocorr(r**2) > 0.05  # GARCH: big moves follow big moves
    assert autocorr(np.abs(r)) > 0.1
    assert abs(autocorr(r)) < 0.05  # but their direction is not predictable


@pytest.mark.parametrize("seed", SEEDS)
def test_ema_crossover_finds_the_planted_trend(seed, tmp_path, monkeypatch):
    """After the fx costs, on all the bars and on the later 20% alone (~50 days of hourly bars), and
    not because prices rise: buy-and-hold gains next to nothing."""
    bars = trend_bars(seed)
    full = ema_sharpes(bars, SENSIBLE, tmp_path, monkeypatch)
    late = ema_sharpes(bars, SENSIBLE, tmp_path, monkeypatch, late=True)
    assert (full > 1.5).all(), full
    assert (late > 1.5).all(), late
    r = log_returns(bars)
    buy_and_hold = r.mean() / r.std() * np.sqrt(bars_per_year(bars.index))
    assert abs(buy_and_hold) < 2 and full.min() > buy_and_hold + 1.5


def test_ema_crossover_finds_nothing_on_the_null_market(tmp_path, monkeypatch):
    """No edge: the contract's Sharpe stays below the bar the trend clears (1.5; one Sharpe over
    ~0.7 years of hourly bars has a standard error of ~1.2, and costs pull it down), and without
    costs the Sharpe of ten window pairs on three seeds averages about 0."""
    own, free = [], []
    for seed in SEEDS:
        bars = null_bars(seed)
        own.append(ema_sharpes(bars, [(12, 48)], tmp_path, monkeypatch).iloc[0])
        free.append(ema_sharpes(bars, PAIRS, tmp_path, monkeypatch, costs=False).mean())
    assert all(abs(s) < 1.5 for s in own), own
    assert abs(np.mean(free)) < 0.5, free

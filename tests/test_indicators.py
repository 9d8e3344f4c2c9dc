"""Every catalog indicator follows the Pine Script (v5/v6) built-in its description names.

Each test recomputes the indicator by hand from the definition, with plain Python arithmetic on a
small series, and checks the warm-up NaNs, the first defined value and the values after it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tasks.indicators import compute

CLOSE = [10.0, 11.0, 12.5, 11.5, 13.0, 14.0, 13.0, 15.5, 16.0, 15.0, 17.0, 18.5, 16.5, 19.0, 20.0]
HIGH = [10.5, 12.0, 13.0, 12.5, 13.5, 15.0, 14.5, 16.0, 17.0, 16.5, 17.5, 19.0, 18.0, 19.5, 21.0]
LOW = [9.5, 10.5, 11.0, 11.0, 12.0, 13.5, 12.5, 14.0, 15.5, 14.5, 15.0, 17.5, 16.0, 17.0, 19.5]
N = len(CLOSE)


def make_bars(close=CLOSE, high=HIGH, low=LOW) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": high, "low": low, "close": close, "volume": 1.0}, index=index
    ).astype(float)


BARS = make_bars()


def approx(values):
    return pytest.approx(values, rel=1e-12, abs=1e-12, nan_ok=True)


def values(out: pd.Series) -> list[float]:
    return out.tolist()


def by_hand_ema(x: list[float], length: int, alpha: float) -> list[float]:
    """Pine's seeded recursion, written out: NaN until `length` defined values, their mean, then
    alpha*x + (1-alpha)*previous. Leading NaNs of x only delay the start."""
    out = [math.nan] * len(x)
    defined = [i for i, v in enumerate(x) if not math.isnan(v)]
    start = defined[0] + length - 1
    out[start] = sum(x[start - length + 1 : start + 1]) / length
    for t in range(start + 1, len(x)):
        out[t] = alpha * x[t] + (1 - alpha) * out[t - 1]
    return out


def test_sma_is_the_mean_of_the_last_window_closes():
    out = compute("sma", BARS, {"window": 4})["value"]
    expected = [math.nan] * 3 + [sum(CLOSE[t - 3 : t + 1]) / 4 for t in range(3, N)]
    assert values(out) == approx(expected)
    assert out.iloc[3] == pytest.approx((10.0 + 11.0 + 12.5 + 11.5) / 4)


def test_ema_is_seeded_with_the_sma_of_the_first_window_closes():
    out = values(compute("ema", BARS, {"window": 5})["value"])
    alpha = 2 / (5 + 1)
    assert all(math.isnan(v) for v in out[:4])
    seed = (10.0 + 11.0 + 12.5 + 11.5 + 13.0) / 5
    assert out[4] == pytest.approx(seed)
    assert out[5] == pytest.approx(alpha * 14.0 + (1 - alpha) * seed)
    expected = [math.nan] * 4 + [seed]
    for t in range(5, N):
        expected.append(alpha * CLOSE[t] + (1 - alpha) * expected[-1])
    assert out == approx(expected)
    # The old definition (recursion from the first close, pandas ewm(adjust=False)) is different.
    from_first_close = pd.Series(CLOSE).ewm(alpha=alpha, adjust=False).mean()
    assert out[5] != pytest.approx(from_first_close.iloc[5], abs=1e-6)


def test_ema_longer_than_the_data_is_undefined():
    out = compute("ema", BARS, {"window": N + 1})["value"]
    assert out.isna().all() and list(out.index) == list(BARS.index)


def test_rsi_is_wilders_rma_of_up_and_down_changes():
    n = 5
    out = values(compute("rsi", BARS, {"window": n})["value"])
    ups = [math.nan] + [max(CLOSE[t] - CLOSE[t - 1], 0.0) for t in range(1, N)]
    downs = [math.nan] + [max(CLOSE[t - 1] - CLOSE[t], 0.0) for t in range(1, N)]
    up = [math.nan] * n + [sum(ups[1 : n + 1]) / n]  # the first RSI is at bar n
    down = [math.nan] * n + [sum(downs[1 : n + 1]) / n]
    for t in range(n + 1, N):
        up.append(ups[t] / n + (1 - 1 / n) * up[-1])  # alpha = 1/n, not 2/(n+1)
        down.append(downs[t] / n + (1 - 1 / n) * down[-1])
    expected = [math.nan] * n + [100 - 100 / (1 + up[t] / down[t]) for t in range(n, N)]
    assert all(math.isnan(v) for v in out[:n])
    # bar 5: changes +1, +1.5, -1, +1.5, +1 -> up 5/5, down 1/5 -> RSI = 100 - 100/6
    assert out[n] == pytest.approx(100 - 100 / (1 + 5.0 / 1.0))
    assert out == approx(expected)


def test_rsi_edge_cases_follow_pine():
    rising = make_bars(
        close=[float(i) for i in range(1, 11)],
        high=[i + 0.5 for i in range(1, 11)],
        low=[i - 0.5 for i in range(1, 11)],
    )
    falling = make_bars(
        close=[float(i) for i in range(10, 0, -1)],
        high=[i + 0.5 for i in range(10, 0, -1)],
        low=[i - 0.5 for i in range(10, 0, -1)],
    )
    flat = make_bars(close=[5.0] * 10, high=[5.5] * 10, low=[4.5] * 10)
    assert values(compute("rsi", rising, {"window": 3})["value"]) == approx([math.nan] * 3 + [100.0] * 7)
    assert values(compute("rsi", falling, {"window": 3})["value"]) == approx([math.nan] * 3 + [0.0] * 7)
    # up == down == 0: Pine checks down == 0 first, so 100
    assert values(compute("rsi", flat, {"window": 3})["value"]) == approx([math.nan] * 3 + [100.0] * 7)


def test_atr_is_wilders_rma_of_the_true_range():
    n = 4
    high = list(HIGH)
    low = list(LOW)
    high[6], low[6] = 15.0, 14.6  # a gap up from close 14.0: |high - close[1]| is the true range
    high[12], low[12] = 17.0, 16.5  # a gap down from close 18.5: |low - close[1]| is the true range
    bars = make_bars(high=high, low=low)
    out = values(compute("atr", bars, {"window": n})["value"])
    tr = [high[0] - low[0]]  # bar 0 has no previous close: high - low
    for t in range(1, N):
        c1 = CLOSE[t - 1]
        tr.append(max(high[t] - low[t], abs(high[t] - c1), abs(low[t] - c1)))
    assert tr[6] == pytest.approx(15.0 - 14.0) and tr[12] == pytest.approx(18.5 - 16.5)
    expected = [math.nan] * (n - 1) + [sum(tr[:n]) / n]
    for t in range(n, N):
        expected.append(tr[t] / n + (1 - 1 / n) * expected[-1])
    assert all(math.isnan(v) for v in out[: n - 1])
    # bar 3: true ranges 1 (high-low), 2 (|12 - 10|), 2 (high-low), 1.5 (high-low)
    assert out[n - 1] == pytest.approx((1.0 + 2.0 + 2.0 + 1.5) / 4)
    assert out == approx(expected)


def test_macd_uses_sma_seeded_emas_and_a_signal_seeded_on_defined_macd():
    fast, slow, sig = 3, 5, 3
    out = compute("macd", BARS, {"fast": fast, "slow": slow, "signal": sig})
    ema_fast = by_hand_ema(CLOSE, fast, 2 / (fast + 1))
    ema_slow = by_hand_ema(CLOSE, slow, 2 / (slow + 1))
    line = [f - s for f, s in zip(ema_fast, ema_slow, strict=True)]
    assert all(math.isnan(v) for v in line[: slow - 1]) and not math.isnan(line[slow - 1])
    signal = [math.nan] * (slow + sig - 2)
    signal.append(sum(line[slow - 1 : slow - 1 + sig]) / sig)  # bar 6: mean of macd at bars 4, 5, 6
    for t in range(slow + sig - 1, N):
        signal.append(2 / (sig + 1) * line[t] + (1 - 2 / (sig + 1)) * signal[-1])
    assert values(out["macd"]) == approx(line)
    assert values(out["signal"]) == approx(signal)
    assert values(out["hist"]) == approx([m - s for m, s in zip(line, signal, strict=True)])
    assert out["signal"].first_valid_index() == BARS.index[6]


def test_bbands_use_the_population_standard_deviation():
    n, k = 5, 2.0
    out = compute("bbands", BARS, {"window": n, "alpha": k})
    middle, upper, lower, pct_b, width = ([math.nan] * (n - 1) for _ in range(5))
    for t in range(n - 1, N):
        window = CLOSE[t - n + 1 : t + 1]
        mean = sum(window) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in window) / n)  # divided by n, not n-1
        middle.append(mean)
        upper.append(mean + k * sd)
        lower.append(mean - k * sd)
        pct_b.append((CLOSE[t] - (mean - k * sd)) / (2 * k * sd))
        width.append(2 * k * sd / mean)  # a fraction; Pine v6's ta.bbw is this x 100
    # bar 4: closes 10, 11, 12.5, 11.5, 13 -> mean 11.6, variance 5.7/5 = 1.14
    assert middle[4] == pytest.approx(11.6) and upper[4] == pytest.approx(11.6 + 2 * math.sqrt(1.14))
    assert values(out["middle"]) == approx(middle)
    assert values(out["upper"]) == approx(upper)
    assert values(out["lower"]) == approx(lower)
    assert values(out["percent_b"]) == approx(pct_b)
    assert values(out["bandwidth"]) == approx(width)


def test_roc_is_the_percent_change_over_window_bars():
    out = values(compute("roc", BARS, {"window": 3})["value"])
    expected = [math.nan] * 3 + [100 * (CLOSE[t] - CLOSE[t - 3]) / CLOSE[t - 3] for t in range(3, N)]
    assert out[3] == pytest.approx(100 * (11.5 - 10.0) / 10.0)
    assert out == approx(expected)


def test_stoch_is_the_unsmoothed_fast_k_and_its_sma():
    kn, dn = 4, 3
    out = compute("stoch", BARS, {"k_window": kn, "d_window": dn})
    k = [math.nan] * (kn - 1)
    for t in range(kn - 1, N):
        lowest, highest = min(LOW[t - kn + 1 : t + 1]), max(HIGH[t - kn + 1 : t + 1])
        k.append(100 * (CLOSE[t] - lowest) / (highest - lowest))
    d = [math.nan] * (kn + dn - 2) + [sum(k[t - dn + 1 : t + 1]) / dn for t in range(kn + dn - 2, N)]
    # bar 3: lowest low 9.5, highest high 13.0 -> 100 * 2 / 3.5
    assert k[3] == pytest.approx(100 * (11.5 - 9.5) / (13.0 - 9.5))
    assert values(out["k"]) == approx(k)
    assert values(out["d"]) == approx(d)
    assert out["d"].first_valid_index() == BARS.index[kn + dn - 2]


def test_outputs_are_float_series_on_the_bars_index():
    out = compute("stoch", BARS, {"k_window": 4, "d_window": 3})
    for series in out.values():
        assert series.index.equals(BARS.index) and series.dtype == np.float64

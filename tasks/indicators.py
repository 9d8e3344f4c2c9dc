"""Indicator computation for the catalog in ``strategy_contract/catalog.py``.

Each indicator follows the definition of the Pine Script (v5/v6) built-in its catalog description
names (``ta.ema``, ``ta.rsi``, ``ta.atr``...), so the numbers match a TradingView chart and a strategy
exported to Pine computes the same values. In particular the exponential averages are seeded the way
Pine seeds them: ``ta.ema`` and ``ta.rma`` (Wilder's smoothing, used by RSI and ATR) are undefined for
the first ``length - 1`` defined inputs, start from the SMA of the first ``length`` of them, and only
then recurse.

Every function takes the bars and the (validated, default-filled) parameters and returns the
catalog's outputs by name. All of them are causal: the value at bar t uses bars up to t only.
Computation is vectorized (pandas rolling/ewm); there is no Python loop over bars.
To add an indicator, add its catalog entry and one function here, registered by the same name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from strategy_contract.catalog import CATALOG

IndicatorFn = Callable[[pd.DataFrame, dict], dict[str, pd.Series]]
INDICATORS: dict[str, IndicatorFn] = {}


def indicator(name: str) -> Callable[[IndicatorFn], IndicatorFn]:
    """Register a compute function under a catalog name."""

    def register(fn: IndicatorFn) -> IndicatorFn:
        if name not in CATALOG:
            raise KeyError(f"indicator '{name}' has no catalog entry in strategy_contract/catalog.py")
        INDICATORS[name] = fn
        return fn

    return register


# --- Pine building blocks -------------------------------------------------------------------------


def _sma(x: pd.Series, length: int) -> pd.Series:
    """ta.sma: mean of the last `length` values; NaN until `length` values are there."""
    return x.rolling(int(length), min_periods=int(length)).mean()


def _seeded_ewm(x: pd.Series, length: int, alpha: float) -> pd.Series:
    """Pine's seeded exponential average: ``sum := na(sum[1]) ? ta.sma(x, length) : a*x + (1-a)*sum[1]``.

    NaN until the first bar s whose last `length` values are all defined; there it is their SMA,
    then ``alpha * x + (1 - alpha) * previous``. Leading NaNs of `x` (e.g. MACD's warm-up) only
    delay the seed, as in Pine. Causal: s and the seed use bars up to s only.
    """
    x = x.astype(float)
    seed = _sma(x, length)
    defined = np.flatnonzero(seed.notna().to_numpy())
    out = pd.Series(np.nan, index=x.index)
    if len(defined) == 0:
        return out
    s = int(defined[0])
    tail = x.iloc[s:].copy()
    tail.iloc[0] = seed.iloc[s]
    out.iloc[s:] = tail.ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def _ema(x: pd.Series, length: int) -> pd.Series:
    """ta.ema: alpha = 2 / (length + 1), seeded with the SMA of the first `length` values."""
    return _seeded_ewm(x, length, 2.0 / (int(length) + 1))


def _rma(x: pd.Series, length: int) -> pd.Series:
    """ta.rma (Wilder's smoothing): alpha = 1 / length, seeded with the SMA of the first `length` values."""
    return _seeded_ewm(x, length, 1.0 / int(length))


def _nonzero(x: pd.Series) -> pd.Series:
    """Denominator with zeros as NaN: Pine's division by zero gives na, not inf."""
    return x.where(x != 0)


# --- Catalog indicators ---------------------------------------------------------------------------


@indicator("sma")
def sma(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    return {"value": _sma(bars["close"].astype(float), p["window"])}


@indicator("ema")
def ema(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    return {"value": _ema(bars["close"], p["window"])}


@indicator("rsi")
def rsi(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    change = bars["close"].astype(float).diff()  # NaN at bar 0, so the first RSI is at bar `window`
    up = _rma(change.clip(lower=0.0), p["window"])
    down = _rma((-change).clip(lower=0.0), p["window"])
    value = 100.0 - 100.0 / (1.0 + up / _nonzero(down))
    value = value.mask(up == 0, 0.0).mask(down == 0, 100.0)  # Pine: down == 0 -> 100, up == 0 -> 0
    return {"value": value.where(up.notna() & down.notna())}


@indicator("atr")
def atr(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    high, low = bars["high"].astype(float), bars["low"].astype(float)
    prev_close = bars["close"].astype(float).shift(1)
    # ta.tr(true): max(high - low, |high - close[1]|, |low - close[1]|); high - low where close[1] is na.
    true_range = pd.concat([high - low, (high - prev_close).abs(), (low - prev_close).abs()], axis=1).max(
        axis=1, skipna=True
    )
    return {"value": _rma(true_range, p["window"])}


@indicator("macd")
def macd(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    close = bars["close"]
    line = _ema(close, p["fast"]) - _ema(close, p["slow"])
    signal = _ema(line, p["signal"])  # seeded with the SMA of the first `signal` defined MACD values
    return {"macd": line, "signal": signal, "hist": line - signal}


@indicator("bbands")
def bbands(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    close = bars["close"].astype(float)
    window = int(p["window"])
    middle = _sma(close, window)
    dev = p["alpha"] * close.rolling(window, min_periods=window).std(ddof=0)  # ta.stdev: biased
    upper, lower = middle + dev, middle - dev
    return {
        "middle": middle,
        "upper": upper,
        "lower": lower,
        "percent_b": (close - lower) / _nonzero(upper - lower),
        "bandwidth": (upper - lower) / _nonzero(middle),  # a fraction; Pine v6's ta.bbw is this x 100
    }


@indicator("roc")
def roc(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    close = bars["close"].astype(float)
    past = close.shift(int(p["window"]))
    return {"value": 100.0 * (close - past) / _nonzero(past)}


@indicator("stoch")
def stoch(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    k_window = int(p["k_window"])
    lowest = bars["low"].astype(float).rolling(k_window, min_periods=k_window).min()
    highest = bars["high"].astype(float).rolling(k_window, min_periods=k_window).max()
    k = 100.0 * (bars["close"].astype(float) - lowest) / _nonzero(highest - lowest)
    return {"k": k, "d": _sma(k, p["d_window"])}


def compute(kind: str, bars: pd.DataFrame, params: dict) -> dict[str, pd.Series]:
    """Compute one catalog indicator; outputs come back as float Series on the bars' index."""
    outputs = INDICATORS[kind](bars, params)
    return {name: pd.Series(s.to_numpy(dtype=float), index=bars.index) for name, s in outputs.items()}

"""Indicator computation for the catalog in ``strategy_contract/catalog.py``, using vectorbt.

Every function takes the bars and the (validated, default-filled) parameters and returns the
catalog's outputs by name. All of them are causal: the value at bar t uses bars up to t only.
To add an indicator, add its catalog entry and one function here, registered by the same name.
"""

from __future__ import annotations

from collections.abc import Callable

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


def _vbt():
    import vectorbt as vbt  # imported lazily: it costs seconds and the CLI must start fast

    return vbt


@indicator("sma")
def sma(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    return {"value": _vbt().MA.run(bars["close"], window=p["window"], ewm=False).ma}


@indicator("ema")
def ema(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    return {"value": _vbt().MA.run(bars["close"], window=p["window"], ewm=True).ma}


@indicator("rsi")
def rsi(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    return {"value": _vbt().RSI.run(bars["close"], window=p["window"], ewm=True).rsi}


@indicator("atr")
def atr(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    return {
        "value": _vbt().ATR.run(bars["high"], bars["low"], bars["close"], window=p["window"], ewm=True).atr
    }


@indicator("macd")
def macd(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    out = _vbt().MACD.run(
        bars["close"],
        fast_window=p["fast"],
        slow_window=p["slow"],
        signal_window=p["signal"],
        macd_ewm=True,
        signal_ewm=True,
    )
    return {"macd": out.macd, "signal": out.signal, "hist": out.hist}


@indicator("bbands")
def bbands(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    out = _vbt().BBANDS.run(bars["close"], window=p["window"], alpha=p["alpha"])
    return {
        "middle": out.middle,
        "upper": out.upper,
        "lower": out.lower,
        "percent_b": out.percent_b,
        "bandwidth": out.bandwidth,
    }


@indicator("roc")
def roc(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    return {"value": bars["close"].pct_change(int(p["window"]), fill_method=None) * 100.0}


@indicator("stoch")
def stoch(bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    out = _vbt().STOCH.run(
        bars["high"], bars["low"], bars["close"], k_window=p["k_window"], d_window=p["d_window"]
    )
    return {"k": out.percent_k, "d": out.percent_d}


def compute(kind: str, bars: pd.DataFrame, params: dict) -> dict[str, pd.Series]:
    """Compute one catalog indicator; outputs come back as float Series on the bars' index."""
    outputs = INDICATORS[kind](bars, params)
    return {name: pd.Series(s.to_numpy(dtype=float), index=bars.index) for name, s in outputs.items()}

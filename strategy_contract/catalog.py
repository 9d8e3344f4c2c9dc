"""The catalog of indicators a strategy may use: names, parameters with bounds, and outputs.

This is metadata only, so the contract (and an LLM reading its schema) can validate a design
without computing anything. The computation lives in ``tasks/indicators.py``, keyed by the same name.

To add an indicator, add one entry here and one function there, e.g.::

    "wma": IndicatorDef(
        description="Weighted moving average of the close.",
        params={"window": ParamDef(int, 20, 2, 400)},
        outputs=("value",),
    ),
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParamDef:
    """One indicator parameter: its type, default and inclusive bounds."""

    type: type  # int or float
    default: float
    min: float
    max: float
    description: str = ""


@dataclass(frozen=True)
class IndicatorDef:
    """One catalog entry. The first output is the one a bare reference (``ema_fast``) means."""

    description: str
    params: dict[str, ParamDef]
    outputs: tuple[str, ...] = ("value",)
    inputs: tuple[str, ...] = ("close",)
    # Pairs (a, b) of parameters that must satisfy a < b, e.g. MACD's fast < slow.
    ordered: tuple[tuple[str, str], ...] = field(default=())


CATALOG: dict[str, IndicatorDef] = {
    "sma": IndicatorDef(
        description="Simple moving average of the close, as Pine's ta.sma: the mean of the last `window` "
        "closes (undefined for the first window-1 bars).",
        params={"window": ParamDef(int, 20, 2, 400, "bars averaged")},
    ),
    "ema": IndicatorDef(
        description="Exponential moving average of the close, as Pine's ta.ema: alpha 2/(window+1), seeded "
        "at bar window-1 with the SMA of the first `window` closes.",
        params={"window": ParamDef(int, 20, 2, 400, "span in bars")},
    ),
    "rsi": IndicatorDef(
        description="Relative strength index of the close, 0-100, as Pine's ta.rsi: up and down changes "
        "averaged with ta.rma (Wilder, alpha 1/window, SMA-seeded; first value at bar `window`), "
        "100 - 100/(1 + up/down), 100 when down is 0 and 0 when up is 0.",
        params={"window": ParamDef(int, 14, 2, 100, "bars")},
    ),
    "atr": IndicatorDef(
        description="Average true range in price units, as Pine's ta.atr: ta.rma (Wilder, alpha 1/window, "
        "SMA-seeded) of ta.tr(true), the true range (high-low on the first bar); use it for volatility stops.",
        params={"window": ParamDef(int, 14, 2, 100, "bars")},
        inputs=("high", "low", "close"),
    ),
    "macd": IndicatorDef(
        description="MACD as Pine's ta.macd: macd = ta.ema(fast) - ta.ema(slow), signal = ta.ema(macd, "
        "signal) seeded on the first `signal` defined macd values, hist = macd - signal.",
        params={
            "fast": ParamDef(int, 12, 2, 100, "fast EMA span"),
            "slow": ParamDef(int, 26, 3, 200, "slow EMA span"),
            "signal": ParamDef(int, 9, 2, 100, "signal EMA span"),
        },
        outputs=("macd", "signal", "hist"),
        ordered=(("fast", "slow"),),
    ),
    "bbands": IndicatorDef(
        description="Bollinger Bands as Pine's ta.bb: middle = ta.sma, upper/lower = middle +/- alpha x "
        "ta.stdev (population); percent_b = (close-lower)/(upper-lower) and bandwidth = "
        "(upper-lower)/middle as a fraction (Pine v6's ta.bbw is this x 100).",
        params={
            "window": ParamDef(int, 20, 5, 200, "bars"),
            "alpha": ParamDef(float, 2.0, 0.5, 4.0, "standard deviations"),
        },
        outputs=("middle", "upper", "lower", "percent_b", "bandwidth"),
    ),
    "roc": IndicatorDef(
        description="Rate of change of the close over `window` bars in percent, as Pine's ta.roc: "
        "100 * (close - close[window]) / close[window].",
        params={"window": ParamDef(int, 10, 1, 200, "bars")},
    ),
    "stoch": IndicatorDef(
        description="Stochastic oscillator, 0-100: %K is Pine's ta.stoch(close, high, low, k_window), the "
        "unsmoothed fast %K = 100*(close - lowest low)/(highest high - lowest low), and %D = ta.sma(%K, "
        "d_window).",
        params={
            "k_window": ParamDef(int, 14, 2, 100, "look-back of %K"),
            "d_window": ParamDef(int, 3, 1, 50, "smoothing of %D"),
        },
        outputs=("k", "d"),
        inputs=("high", "low", "close"),
    ),
}

PRICE_FIELDS = ("open", "high", "low", "close", "volume")

# Outputs the model exposes to rules when a strategy has one: class probabilities and the
# predicted direction (+1 up, 0 flat, -1 down).
MODEL_OUTPUTS = ("prob_up", "prob_flat", "prob_down", "signal")


def describe_catalog() -> list[dict]:
    """The catalog as plain data, for the CLI and for an LLM's tool result."""
    return [
        {
            "type": name,
            "description": d.description,
            "outputs": list(d.outputs),
            "params": {
                p: {"type": pd.type.__name__, "default": pd.default, "min": pd.min, "max": pd.max}
                for p, pd in d.params.items()
            },
        }
        for name, d in CATALOG.items()
    ]

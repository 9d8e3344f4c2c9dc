"""From bars to everything rules and models read: indicators, fuzzy memberships, model inputs, labels.

No value at bar t depends on bars after t, except labels, which are the targets: they look forward by
design and are only ever compared with predictions made from features at t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategy_contract.catalog import CATALOG, PRICE_FIELDS
from strategy_contract.models import ForwardReturnLabel, Label, Strategy, ZigZagLabel
from tasks import indicators

DOWN, FLAT, UP = 0, 1, 2
CLASS_NAMES = ("down", "flat", "up")


def indicator_frame(bars: pd.DataFrame, strategy: Strategy) -> pd.DataFrame:
    """Price fields plus every indicator output, one column per reference name."""
    columns: dict[str, pd.Series] = {f: bars[f].astype(float) for f in PRICE_FIELDS}
    for spec in strategy.indicators:
        outputs = indicators.compute(spec.type, bars, spec.params)
        first = CATALOG[spec.type].outputs[0]
        columns[spec.id] = outputs[first]
        for name, series in outputs.items():
            columns[f"{spec.id}.{name}"] = series
    return pd.DataFrame(columns, index=bars.index)


def membership_frame(frame: pd.DataFrame, strategy: Strategy) -> pd.DataFrame:
    """Fuzzy membership degree (0-1) of each named set; NaN where its indicator is not yet defined."""
    columns = {}
    for source, sets in strategy.fuzzy_sets.items():
        x = frame[source].to_numpy(dtype=float)
        for name, fn in sets.items():
            degree = fn.degree(x)
            columns[f"fuzzy.{source}.{name}"] = np.where(np.isnan(x), np.nan, degree)
    return pd.DataFrame(columns, index=frame.index)


def feature_frame(bars: pd.DataFrame, strategy: Strategy) -> pd.DataFrame:
    """Indicators and memberships together: every reference a rule can use except model outputs."""
    frame = indicator_frame(bars, strategy)
    return pd.concat([frame, membership_frame(frame, strategy)], axis=1)


def model_inputs(features: pd.DataFrame, lookback: int) -> pd.DataFrame:
    """Membership degrees of the last `lookback` bars (t, t-1, ...), one row per bar."""
    fuzzy = features[[c for c in features.columns if c.startswith("fuzzy.")]]
    lagged = [fuzzy.shift(lag).add_suffix(f"@t-{lag}") for lag in range(lookback)]
    return pd.concat(lagged, axis=1)


def make_labels(close: pd.Series, label: Label) -> pd.Series:
    """Class per bar (0 down, 1 flat, 2 up); NaN at the end where the future is not known yet."""
    if isinstance(label, ForwardReturnLabel):
        return _forward_return_labels(close, label)
    if isinstance(label, ZigZagLabel):
        return _zigzag_labels(close, label)
    raise TypeError(f"no labeller for {type(label).__name__}")


def _forward_return_labels(close: pd.Series, label: ForwardReturnLabel) -> pd.Series:
    future = close.shift(-label.horizon) / close - 1.0
    classes = np.where(future > label.threshold, UP, np.where(future < -label.threshold, DOWN, FLAT))
    return pd.Series(np.where(future.isna(), np.nan, classes), index=close.index)


def _zigzag_labels(close: pd.Series, label: ZigZagLabel) -> pd.Series:
    prices = close.to_numpy(dtype=float)
    n, h = len(prices), label.max_horizon
    out = np.full(n, np.nan)
    for t in range(n - 1):
        window = prices[t + 1 : t + 1 + h] / prices[t] - 1.0
        up = np.flatnonzero(window >= label.threshold)
        down = np.flatnonzero(window <= -label.threshold)
        first_up = up[0] if up.size else h
        first_down = down[0] if down.size else h
        if first_up < first_down:
            out[t] = UP
        elif first_down < first_up:
            out[t] = DOWN
        elif len(window) == h:  # neither barrier touched within the full horizon
            out[t] = FLAT
    return pd.Series(out, index=close.index)


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import cached_step  # noqa: E402

features = cached_step(feature_frame, "features")

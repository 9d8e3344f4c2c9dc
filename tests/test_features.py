"""Features never look ahead: changing bars after t leaves every feature at t unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategy_contract import CATALOG, parse_strategy
from strategy_contract.models import ForwardReturnLabel, ZigZagLabel
from tasks.data import load_bars
from tasks.features import DOWN, FLAT, UP, feature_frame, make_labels, model_inputs

EVERY_INDICATOR = parse_strategy(
    {
        "strategy_id": "all_indicators",
        "thesis": "uses every indicator of the catalog",
        "markets": ["EURUSD"],
        "timeframes": ["1h"],
        "indicators": [{"id": f"{name}_1", "type": name} for name in CATALOG],
        "fuzzy_sets": {
            "rsi_1": {"low": {"shape": "trapezoidal", "points": [0, 0, 30, 45]}},
            "macd_1.hist": {"pos": {"shape": "gaussian", "mean": 0.001, "sigma": 0.001}},
            "stoch_1.d": {"mid": {"shape": "triangular", "points": [20, 50, 80]}},
        },
        "model": {
            "kind": "mlp",
            "lookback": 3,
            "label": {"kind": "zigzag", "threshold": 0.002, "max_horizon": 24},
        },
        "entry_rules": [{"left": "model.prob_up", "op": ">", "right": 0.5}],
        "exit_rules": [{"left": "close", "op": "crosses_below", "right": "ema_1"}],
        "data": {"embargo_bars": 24},
    }
)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return load_bars("EURUSD", "1h").iloc[:1500]


@pytest.mark.parametrize("t", [300, 900, 1400])
def test_changing_the_future_leaves_features_at_t_unchanged(bars, t):
    before = feature_frame(bars, EVERY_INDICATOR)
    rng = np.random.default_rng(t)
    future = bars.copy()
    shock = rng.uniform(0.7, 1.3, size=(len(bars) - t - 1, 1))
    future.iloc[t + 1 :, :4] = future.iloc[t + 1 :, :4].to_numpy() * shock
    future["high"] = future[["open", "high", "low", "close"]].max(axis=1)
    future["low"] = future[["open", "high", "low", "close"]].min(axis=1)
    after = feature_frame(future, EVERY_INDICATOR)

    pd.testing.assert_frame_equal(before.iloc[: t + 1], after.iloc[: t + 1])
    assert not before.iloc[t + 1 :].equals(after.iloc[t + 1 :])  # the shock did change the future
    pd.testing.assert_frame_equal(model_inputs(before, 3).iloc[: t + 1], model_inputs(after, 3).iloc[: t + 1])


def test_every_catalog_output_is_a_column(bars):
    frame = feature_frame(bars, EVERY_INDICATOR)
    for name, spec in CATALOG.items():
        for output in spec.outputs:
            assert frame[f"{name}_1.{output}"].iloc[-100:].notna().all(), f"{name}.{output}"
    assert frame["fuzzy.rsi_1.low"].dropna().between(0, 1).all()


def test_model_inputs_are_lagged_memberships(bars):
    frame = feature_frame(bars, EVERY_INDICATOR)
    inputs = model_inputs(frame, 3)
    assert inputs.shape[1] == 3 * 3
    assert inputs["fuzzy.rsi_1.low@t-2"].iloc[500] == frame["fuzzy.rsi_1.low"].iloc[498]


def test_forward_return_labels_by_hand():
    close = pd.Series([100.0, 101.5, 99.0, 99.5, 103.0])
    labels = make_labels(close, ForwardReturnLabel(horizon=1, threshold=0.01))
    assert labels.iloc[:4].tolist() == [UP, DOWN, FLAT, UP]  # +1.5%, -2.46%, +0.51%, +3.52%
    assert np.isnan(labels.iloc[4])  # the future of the last bar is unknown


def test_zigzag_labels_take_the_first_barrier():
    close = pd.Series([100.0, 100.5, 98.9, 102.0, 102.1, 102.0, 101.5])
    labels = make_labels(close, ZigZagLabel(threshold=0.01, max_horizon=3))
    assert labels.iloc[0] == DOWN  # 98.9 is touched before 102.0
    assert labels.iloc[1] == DOWN  # 98.9 <= 100.5 * 0.99
    assert labels.iloc[2] == UP
    assert labels.iloc[3] == FLAT  # 102.1, 102.0, 101.5 stay within 1% of 102.0
    assert np.isnan(labels.iloc[4])  # fewer than 3 bars left: the future is unknown

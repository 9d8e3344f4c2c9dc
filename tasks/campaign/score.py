"""Seed 003's composite score, and the gates a candidate must pass, from walk-forward numbers.

Each component is normalised to [0, 1] before the weights (``ScoreWeights``) apply, so the score is in
[0, 1] too:

- return quality: ``0.5 + 0.5 tanh(r / 0.20)`` of the annualised OOS return r (0 -> 0.5, +20 %/yr ->
  0.88, -20 %/yr -> 0.12): smooth, and no single outlier return can dominate;
- drawdown control: ``1 - dd / gate``, clipped to [0, 1], of the OOS max drawdown against its gate;
- risk-adjusted return: ``0.5 + 0.5 tanh(s / 2)`` of the annualised OOS Sharpe s (1 -> 0.73, 2 -> 0.88);
- robustness: the mean of ``1 - degradation / (2 gate)`` (clipped) and ``1 / (1 + std of fold
  Sharpes)``: OOS that holds up against in-sample, and folds that agree with each other.

A combination with fewer closed OOS trades than the gate's minimum, or with an undefined Sharpe, has no
score (NaN) and cannot be chosen; nor can one of a model group whose training failed its gate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tasks.campaign.request import CampaignGates, ScoreWeights

COMPONENTS = ("return_quality", "drawdown_control", "risk_adjusted", "robustness")


def components(table: pd.DataFrame, gates: CampaignGates) -> pd.DataFrame:
    """The four normalised components of every row of a walk-forward table."""
    degradation = table["oos_degradation"].astype(float)
    held_up = np.clip(1.0 - degradation / (2.0 * max(gates.max_oos_degradation, 1e-9)), 0.0, 1.0)
    agree = 1.0 / (1.0 + table["fold_sharpe_std"].astype(float).fillna(np.inf))
    return pd.DataFrame(
        {
            "return_quality": 0.5 + 0.5 * np.tanh(table["oos_annual_return"].astype(float) / 0.20),
            "drawdown_control": np.clip(1.0 - table["oos_max_drawdown"] / gates.max_drawdown, 0.0, 1.0),
            "risk_adjusted": 0.5 + 0.5 * np.tanh(table["oos_sharpe"].astype(float) / 2.0),
            "robustness": 0.5 * held_up.fillna(0.0) + 0.5 * agree,
        },
        index=table.index,
    )


def composite(table: pd.DataFrame, gates: CampaignGates, weights: ScoreWeights) -> pd.Series:
    """The weighted score of every row; NaN where the row may not be chosen."""
    parts = components(table, gates)
    value = sum(getattr(weights, name) * parts[name] for name in COMPONENTS)
    eligible = (table["oos_trades"] >= gates.min_trades) & np.isfinite(table["oos_sharpe"].astype(float))
    if "trained" in table:
        eligible &= table["trained"].astype(bool)
    return value.where(eligible)


def criterion(name: str, value: float | None, threshold: float, op: str) -> dict:
    """One line of a verdict's rationale: the value, the threshold, and whether it passes."""
    ok = (
        value is not None
        and math.isfinite(value)
        and (value <= threshold if op == "<=" else value >= threshold)
    )
    return {"criterion": name, "value": value, "op": op, "threshold": threshold, "passed": bool(ok)}


def walk_forward_criteria(row: dict, gates: CampaignGates) -> list[dict]:
    """Seed 003's mandatory gates on a candidate's walk-forward OOS record."""
    return [
        criterion("walk-forward max drawdown", row.get("oos_max_drawdown"), gates.max_drawdown, "<="),
        criterion("walk-forward Sharpe", row.get("oos_sharpe"), gates.min_sharpe, ">="),
        criterion("OOS degradation", row.get("oos_degradation"), gates.max_oos_degradation, "<="),
        criterion("walk-forward trades", row.get("oos_trades"), gates.min_trades, ">="),
    ]

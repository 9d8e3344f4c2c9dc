"""Model strategies in a sweep: one training per distinct value of the parameters the model reads.

A combination that changes a window of an indicator feeding the fuzzy sets changes the model's inputs,
so it needs its own model; stop sizes, and windows of indicators the model does not read (an ATR for
stops), do not. Combinations are grouped by their model parameters, each group is trained once, exactly
as a research cycle trains (same seed, same train and validation parts), and the group's predictions
feed the rules of all its combinations.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from strategy_contract.models import Strategy
from tasks.features import feature_frame
from tasks.gates import check_training_gate
from tasks.splits import SplitBounds
from tasks.train import train_model


@dataclass
class TrainedGroup:
    """A group's model outputs (``model.prob_up``...) per bar, and whether training passed its gate."""

    params: dict[str, float]
    model_outputs: pd.DataFrame
    accuracy: float
    passed_gate: bool
    gate_reason: str


def groups(combos: pd.DataFrame, model_keys: list[str]) -> list[tuple[dict, pd.DataFrame]]:
    """The combinations split by their model parameters, in order of first appearance."""
    if not model_keys:
        return [({}, combos)]
    return [
        (dict(zip(model_keys, key if isinstance(key, tuple) else (key,), strict=True)), part)
        for key, part in combos.groupby(model_keys, sort=False)
    ]


def train_group(
    strategy: Strategy, bars: pd.DataFrame, bounds: SplitBounds, params: dict[str, float], seed: int
) -> TrainedGroup:
    """Train the contract with this group's model parameters set."""
    member = strategy.with_params(params)
    outcome = train_model(member, bars, feature_frame(bars, member), bounds, seed)
    gate = check_training_gate(outcome.metrics, member.gates.training)
    return TrainedGroup(
        params=params,
        model_outputs=outcome.predictions.add_prefix("model."),
        accuracy=outcome.metrics.accuracy,
        passed_gate=gate.passed,
        gate_reason=gate.reason,
    )

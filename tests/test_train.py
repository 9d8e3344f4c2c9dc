"""Lightning training is reproducible: the same seed gives the same metrics, another seed does not."""

from __future__ import annotations

import io

import pytest
import torch
from conftest import STRATEGIES

from strategy_contract import load_strategy
from tasks.data import load_bars
from tasks.features import feature_frame
from tasks.splits import split_bounds
from tasks.train import train_model


@pytest.fixture(scope="module")
def setting():
    strategy = load_strategy(STRATEGIES / "fuzzy_momentum_mlp.yaml")
    strategy = strategy.model_copy(update={"model": strategy.model.model_copy(update={"epochs": 6})})
    bars = load_bars(strategy.symbol, strategy.timeframe).iloc[-2500:]
    return strategy, bars, feature_frame(bars, strategy), split_bounds(len(bars), strategy.data)


def test_same_seed_same_metrics(setting):
    strategy, bars, frame, bounds = setting
    first = train_model(strategy, bars, frame, bounds, seed=7)
    second = train_model(strategy, bars, frame, bounds, seed=7)
    assert first.metrics == second.metrics
    assert first.predictions.equals(second.predictions)
    other = train_model(strategy, bars, frame, bounds, seed=8)
    assert other.metrics.loss_curve != first.metrics.loss_curve


def test_training_records_what_the_gate_and_a_person_need(setting):
    strategy, bars, frame, bounds = setting
    outcome = train_model(strategy, bars, frame, bounds, seed=1)
    m = outcome.metrics
    assert 1 <= m.epochs_run <= 6 and len(m.loss_curve) == m.epochs_run
    assert m.initial_loss > 0 and m.loss_decrease == pytest.approx(
        (m.initial_loss - m.final_loss) / m.initial_loss
    )
    assert sum(m.class_balance["train"].values()) == pytest.approx(1.0, abs=1e-3)
    assert m.samples["train"] > m.samples["validation"] > 0
    state = torch.load(io.BytesIO(outcome.checkpoint), map_location="cpu", weights_only=True)
    assert any(k.startswith("net.") for k in state["state_dict"])
    # predictions exist only where the inputs do, and are probabilities
    ready = outcome.predictions.dropna()
    assert len(ready) > 0.9 * len(bars)
    assert ((ready[["prob_down", "prob_flat", "prob_up"]].sum(axis=1) - 1).abs() < 1e-5).all()

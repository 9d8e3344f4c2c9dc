"""Gates: seed 000 thresholds by default, overridable by the contract, with reasons a person reads."""

from __future__ import annotations

from strategy_contract.models import BacktestGate, TrainingGate
from tasks.backtest import BacktestMetrics
from tasks.gates import check_backtest_gate, check_training_gate
from tasks.train import TrainingMetrics


def training(accuracy=0.6, initial=1.1, final=0.6) -> TrainingMetrics:
    return TrainingMetrics(
        accuracy=accuracy,
        baseline_accuracy=0.5,
        test_accuracy=0.5,
        initial_loss=initial,
        final_loss=final,
        loss_decrease=(initial - final) / initial,
        epochs_run=3,
        best_epoch=2,
        stopped_early=False,
        n_features=4,
        samples={},
        class_balance={},
        loss_curve=[],
    )


def backtest(win_rate=0.5, drawdown=0.1, sharpe=0.5, trades=12) -> BacktestMetrics:
    return BacktestMetrics(
        start="a",
        end="b",
        bars=100,
        total_return=0.05,
        benchmark_return=0.02,
        sharpe=sharpe,
        sortino=sharpe,
        max_drawdown=drawdown,
        win_rate=win_rate,
        trades=trades,
        profit_factor=1.2,
        exposure=0.3,
        fees_paid=1.0,
        final_value=10500,
    )


def test_training_gate_passes_and_fails_at_seed_thresholds():
    assert check_training_gate(training(), TrainingGate()).passed
    result = check_training_gate(training(accuracy=0.41), TrainingGate())
    assert result.reason == "Training gate failed: accuracy 0.41 < 0.45"
    result = check_training_gate(training(initial=0.9, final=0.85), TrainingGate())
    assert result.failures == ["final loss 0.850 > 0.800", "loss decrease 6% < 20%"]


def test_contract_overrides_training_thresholds():
    assert not check_training_gate(training(accuracy=0.6), TrainingGate(min_accuracy=0.7)).passed


def test_backtest_gate_seed_thresholds():
    gate = BacktestGate()
    assert check_backtest_gate(backtest(), gate).passed
    assert (
        check_backtest_gate(backtest(win_rate=0.44), gate).reason
        == "Backtest gate failed: win rate 44% < 45%"
    )
    assert check_backtest_gate(backtest(drawdown=0.41), gate).failures == ["max drawdown 41% > 40%"]
    assert check_backtest_gate(backtest(sharpe=-0.6), gate).failures == ["Sharpe -0.60 < -0.50"]
    assert check_backtest_gate(backtest(trades=0, win_rate=None, sharpe=None), gate).failures == [
        "0 trades < 1"
    ]

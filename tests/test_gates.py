"""Gates: seed 000 thresholds by default, overridable by the contract, with reasons a person reads."""

from __future__ import annotations

from conftest import period_metrics

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
    return period_metrics(
        win_rate=win_rate, max_drawdown=drawdown, sharpe=sharpe, sortino=sharpe, trades=trades
    )


def test_training_gate_passes_and_fails_at_seed_thresholds():
    assert check_training_gate(training(), TrainingGate()).passed
    result = check_training_gate(training(accuracy=0.41), TrainingGate())
    assert result.reason == "Training gate failed: accuracy 0.41 < 0.45"
    result = check_training_gate(training(initial=0.9, final=0.85), TrainingGate())
    assert result.failures == ["final loss 0.85 > 0.8", "loss decrease 6% < 20%"]


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
    assert check_backtest_gate(backtest(sharpe=-0.6), gate).failures == ["Sharpe -0.60 < -0.5"]


def test_gate_messages_never_show_two_equal_numbers():
    gate = BacktestGate()
    assert check_backtest_gate(backtest(sharpe=-0.5004), gate).failures == ["Sharpe -0.5004 < -0.5"]
    assert check_backtest_gate(backtest(win_rate=0.44996), gate).failures == ["win rate 44.996% < 45%"]
    result = check_training_gate(training(accuracy=0.44999), TrainingGate())
    assert result.failures == ["accuracy 0.44999 < 0.45"]


def test_zero_closed_trades_and_undefined_numbers_fail_the_gate():
    no_trades = backtest(trades=0, win_rate=None, sharpe=None)
    assert check_backtest_gate(no_trades, BacktestGate()).failures == [
        "0 closed trades < 1",
        "win rate undefined (no closed trade)",
        "Sharpe undefined (returns have no variance)",
    ]
    # a contract's min_trades of 0 does not let zero closed trades through
    assert not check_backtest_gate(backtest(trades=0), BacktestGate(min_trades=0)).passed
    assert check_backtest_gate(backtest(sharpe=None), BacktestGate()).failures == [
        "Sharpe undefined (returns have no variance)"
    ]
    assert check_backtest_gate(backtest(win_rate=None), BacktestGate()).failures == [
        "win rate undefined (no closed trade)"
    ]

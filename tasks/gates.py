"""Quality gates: pure functions from metrics and thresholds to a verdict the flow branches on.

The thresholds come from the contract after ``tasks/settings.py`` has applied the operator's floors
(seed 000's defaults unless the operator says otherwise): a contract can tighten a gate, never loosen
it. The backtest gate judges the *selection* part of the data (never the held-out part), and a number
that is undefined (no closed trade, flat equity) fails the check instead of skipping it.
"""

from __future__ import annotations

from pydantic import BaseModel

from strategy_contract.models import BacktestGate, TrainingGate
from tasks.backtest import BacktestMetrics
from tasks.train import TrainingMetrics


class GateResult(BaseModel):
    gate: str
    passed: bool
    failures: list[str]
    checks: dict[str, bool] = {}  # criterion -> passed, each criterion the gate judged (for metrics)

    @property
    def reason(self) -> str:
        """One sentence a person understands, e.g. 'Training gate failed: accuracy 0.41 < 0.45'."""
        if self.passed:
            return f"{self.gate.capitalize()} gate passed"
        return f"{self.gate.capitalize()} gate failed: " + "; ".join(self.failures)


def compared(value: float, threshold: float, op: str, percent: bool = False) -> str:
    """'value op threshold' with as many decimals as it takes for the two numbers to look different,
    e.g. 'Sharpe -0.5004 < -0.50', never 'Sharpe -0.50 < -0.50'."""
    scale, suffix = (100.0, "%") if percent else (1.0, "")
    for digits in range(0 if percent else 2, 10):
        left, right = f"{value * scale:.{digits}f}", f"{threshold * scale:.{digits}f}"
        if left != right:
            break
    return f"{left}{suffix} {op} {float(f'{threshold * scale:.{digits}f}'):g}{suffix}"


def check_training_gate(m: TrainingMetrics, gate: TrainingGate) -> GateResult:
    failures = []
    checks = {
        "accuracy": m.accuracy >= gate.min_accuracy,
        "final_loss": m.final_loss <= gate.max_final_loss,
        "loss_decrease": m.loss_decrease >= gate.min_loss_decrease,
    }
    if not checks["accuracy"]:
        failures.append(f"accuracy {compared(m.accuracy, gate.min_accuracy, '<')}")
    if not checks["final_loss"]:
        failures.append(f"final loss {compared(m.final_loss, gate.max_final_loss, '>')}")
    if not checks["loss_decrease"]:
        failures.append(
            f"loss decrease {compared(m.loss_decrease, gate.min_loss_decrease, '<', percent=True)}"
        )
    return GateResult(gate="training", passed=not failures, failures=failures, checks=checks)


def check_backtest_gate(m: BacktestMetrics, gate: BacktestGate) -> GateResult:
    """Judge the selection-part backtest. Zero closed trades never pass, whatever `min_trades` says."""
    failures = []
    min_trades = max(gate.min_trades, 1)
    checks = {
        "trades": m.trades >= min_trades,
        "win_rate": m.win_rate is not None and m.win_rate >= gate.min_win_rate,
        "max_drawdown": m.max_drawdown <= gate.max_drawdown,
        "sharpe": m.sharpe is not None and m.sharpe >= gate.min_sharpe,
    }
    if not checks["trades"]:
        failures.append(f"{m.trades} closed trades < {min_trades}")
    if m.win_rate is None:
        failures.append("win rate undefined (no closed trade)")
    elif not checks["win_rate"]:
        failures.append(f"win rate {compared(m.win_rate, gate.min_win_rate, '<', percent=True)}")
    if not checks["max_drawdown"]:
        failures.append(f"max drawdown {compared(m.max_drawdown, gate.max_drawdown, '>', percent=True)}")
    if m.sharpe is None:
        failures.append("Sharpe undefined (returns have no variance)")
    elif not checks["sharpe"]:
        failures.append(f"Sharpe {compared(m.sharpe, gate.min_sharpe, '<')}")
    return GateResult(gate="backtest", passed=not failures, failures=failures, checks=checks)

"""Quality gates: pure functions from metrics and thresholds to a verdict the flow branches on.

Defaults are seed 000's (intentionally loose); a contract overrides them under ``gates``.
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

    @property
    def reason(self) -> str:
        """One sentence a person understands, e.g. 'Training gate failed: accuracy 0.41 < 0.45'."""
        if self.passed:
            return f"{self.gate.capitalize()} gate passed"
        return f"{self.gate.capitalize()} gate failed: " + "; ".join(self.failures)


def check_training_gate(m: TrainingMetrics, gate: TrainingGate) -> GateResult:
    failures = []
    if m.accuracy < gate.min_accuracy:
        failures.append(f"accuracy {m.accuracy:.2f} < {gate.min_accuracy:.2f}")
    if m.final_loss > gate.max_final_loss:
        failures.append(f"final loss {m.final_loss:.3f} > {gate.max_final_loss:.3f}")
    if m.loss_decrease < gate.min_loss_decrease:
        failures.append(f"loss decrease {m.loss_decrease:.0%} < {gate.min_loss_decrease:.0%}")
    return GateResult(gate="training", passed=not failures, failures=failures)


def check_backtest_gate(m: BacktestMetrics, gate: BacktestGate) -> GateResult:
    failures = []
    if m.trades < gate.min_trades:
        failures.append(f"{m.trades} trades < {gate.min_trades}")
    if m.win_rate is not None and m.win_rate < gate.min_win_rate:
        failures.append(f"win rate {m.win_rate:.0%} < {gate.min_win_rate:.0%}")
    if m.max_drawdown > gate.max_drawdown:
        failures.append(f"max drawdown {m.max_drawdown:.0%} > {gate.max_drawdown:.0%}")
    if m.sharpe is not None and m.sharpe < gate.min_sharpe:
        failures.append(f"Sharpe {m.sharpe:.2f} < {gate.min_sharpe:.2f}")
    return GateResult(gate="backtest", passed=not failures, failures=failures)

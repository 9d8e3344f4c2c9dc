"""The cycle's summary as Markdown, published as a Prefect artifact on the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strategy_contract import Strategy

if TYPE_CHECKING:
    from flows.research_cycle import CycleResult


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def summary_markdown(result: CycleResult, strategy: Strategy) -> str:
    lines = [
        f"# Research cycle: `{strategy.strategy_id}`",
        "",
        f"**Status:** {result.status}" + (f" ({result.reason})" if result.reason else ""),
        f"**Verdict:** {result.verdict or 'none'}  ",
        f"**Market:** {strategy.symbol} {strategy.timeframe}  ",
        f"**Thesis:** {strategy.thesis}",
        "",
    ]
    training = result.metrics.get("training")
    if training:
        lines += ["## Training (validation)", "", "| metric | value |", "|---|---|"]
        for key in (
            "accuracy",
            "baseline_accuracy",
            "final_loss",
            "loss_decrease",
            "epochs_run",
            "test_accuracy",
        ):
            lines.append(f"| {key} | {_fmt(training.get(key))} |")
        lines.append("")
    backtest = result.metrics.get("backtest")
    if backtest:
        lines += ["## Backtest", "", "| metric | in-sample | held-out |", "|---|---|---|"]
        for key in (
            "total_return",
            "benchmark_return",
            "sharpe",
            "sortino",
            "max_drawdown",
            "win_rate",
            "trades",
            "profit_factor",
            "exposure",
        ):
            lines.append(
                f"| {key} | {_fmt(backtest['in_sample'].get(key))} | {_fmt(backtest['out_of_sample'].get(key))} |"
            )
        lines.append("")
    lines += ["## Files", ""] + [f"- {name}: `{path}`" for name, path in result.artifacts.items()]
    lines += ["", f"Phase seconds: {result.phase_seconds}; total {result.duration_s:.1f} s."]
    return "\n".join(lines)

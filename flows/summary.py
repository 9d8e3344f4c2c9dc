"""The cycle's summary as Markdown, published as a Prefect artifact on the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strategy_contract import Strategy

if TYPE_CHECKING:
    from flows.research_cycle import CycleResult


HEADLINE_METRICS = (
    "total_return",
    "benchmark_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "trades",
    "profit_factor",
    "exposure",
)


def fmt(value) -> str:
    """A metric as a person reads it: 4 decimals, 'n/a' when undefined."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def backtest_rows(backtest: dict) -> list[tuple[str, str, str]]:
    """(metric, in-sample, held-out) for the headline metrics of a cycle's backtest."""
    return [
        (k, fmt(backtest["in_sample"].get(k)), fmt(backtest["out_of_sample"].get(k)))
        for k in HEADLINE_METRICS
    ]


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
            lines.append(f"| {key} | {fmt(training.get(key))} |")
        lines.append("")
    backtest = result.metrics.get("backtest")
    if backtest:
        lines += ["## Backtest", "", "| metric | in-sample | held-out |", "|---|---|---|"]
        lines += [f"| {key} | {ins} | {oos} |" for key, ins, oos in backtest_rows(backtest)]
        lines.append("")
    lines += ["## Files", ""] + [f"- {name}: `{path}`" for name, path in result.artifacts.items()]
    lines += ["", f"Phase seconds: {result.phase_seconds}; total {result.duration_s:.1f} s."]
    return "\n".join(lines)

"""The cycle's summary as Markdown, published as a Prefect artifact on the run."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from strategy_contract import Strategy
from tasks.sweep.report import data_uri

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
    """A metric as a person reads it: 4 decimals, 'inf' for a profit factor without losers, 'n/a' when
    undefined."""
    if value is None:
        return "n/a"
    if value == "Infinity" or (isinstance(value, float) and math.isinf(value)):
        return "inf"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def backtest_columns(backtest: dict) -> tuple[str, str]:
    """Column titles: the selection part by its name ('validation' or 'train+validation'), then held-out."""
    return backtest.get("selection_part", "selection"), "held-out (for you only)"


def backtest_rows(backtest: dict) -> list[tuple[str, str, str]]:
    """(metric, selection part, held-out) for the headline metrics of a cycle's backtest."""
    rows = [
        (k, fmt(backtest["selection"].get(k)), fmt(backtest["held_out"].get(k))) for k in HEADLINE_METRICS
    ]
    rows.append(
        (
            "open_at_end",
            "yes" if backtest["selection"].get("open_position") else "no",
            "yes" if backtest["held_out"].get("open_position") else "no",
        )
    )
    return rows


def summary_markdown(result: CycleResult, strategy: Strategy, equity_png: bytes | None = None) -> str:
    """The summary artifact of a cycle; ``equity_png`` (its ``equity.png``) is inlined as an image, which
    the Prefect UI shows on the artifact's page."""
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
        selection, held_out = backtest_columns(backtest)
        lines += [
            "## Backtest",
            "",
            f"The gate, the assessment and later designs read the {selection} bars only.",
            "",
            f"| metric | {selection} | {held_out} |",
            "|---|---|---|",
        ]
        lines += [f"| {key} | {sel} | {ho} |" for key, sel, ho in backtest_rows(backtest)]
        lines += ["", result.held_out or "", ""]
    if equity_png:
        caption = "equity, buy and hold, entries and exits, drawdown; held-out period shaded"
        lines += [f"![{caption}]({data_uri(equity_png)})", ""]
    lines += ["## Files", ""] + [f"- {name}: `{path}`" for name, path in result.artifacts.items()]
    lines += ["", f"Phase seconds: {result.phase_seconds}; total {result.duration_s:.1f} s."]
    return "\n".join(lines)

"""`stratlab cycle`: one research cycle in this process, with progress and a results table."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stratlab.common import EXIT_COMPLETED, EXIT_ERROR, EXIT_GATE, console, fail, prepare_prefect_env


def cycle(
    strategy: Annotated[Path | None, typer.Option(help="Contract to run instead of designing one.")] = None,
    designer: Annotated[
        str, typer.Option(help="auto (Claude if ANTHROPIC_API_KEY is set), claude or local.")
    ] = "auto",
    assessor: Annotated[
        str, typer.Option(help="auto (Claude if ANTHROPIC_API_KEY is set), claude or local.")
    ] = "auto",
    model: Annotated[str | None, typer.Option(help="Claude model (default: claude-opus-5).")] = None,
    symbol: Annotated[str | None, typer.Option(help="Market, e.g. EURUSD or SPX.")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Bar size, e.g. 1h or 1d.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for design and training.")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Run one research cycle in this process: design, train, gates, backtest, assess.

    Exit status: 0 completed, 2 a gate rejected the strategy, 1 an error (budget_exhausted included).
    """
    for option, value in (("--designer", designer), ("--assessor", assessor)):
        if value not in ("auto", "claude", "local"):
            raise fail(f"{option}: '{value}' is not one of auto, claude, local")
    if "claude" in (designer, assessor) and not os.environ.get("ANTHROPIC_API_KEY"):
        raise fail(
            "Claude needs ANTHROPIC_API_KEY in the environment (or use --designer local --assessor local)"
        )
    if strategy is not None and not strategy.is_file():
        raise fail(f"--strategy: {strategy} does not exist")
    prepare_prefect_env()
    from flows.research_cycle import CycleParams, run_cycle

    params = CycleParams(
        strategy_file=str(strategy) if strategy else None,
        designer=designer,
        assessor=assessor,
        **({"model": model} if model else {}),
        symbol=symbol,
        timeframe=timeframe,
        seed=seed,
    )
    if as_json:
        result = run_cycle(params)
        sys.stdout.write(result.model_dump_json() + "\n")
    else:
        _show_progress()
        console.print("[bold]Research cycle[/bold] (Prefect, in-process)")
        result = run_cycle(params)
        _print_result(result)
    if result.status == "completed":
        raise typer.Exit(EXIT_COMPLETED)
    raise typer.Exit(EXIT_GATE if result.reason and " gate failed: " in result.reason else EXIT_ERROR)


def _show_progress() -> None:
    class RichHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            console.print(record.getMessage(), highlight=False)

    log = logging.getLogger("stratlab.progress")
    log.setLevel(logging.INFO)
    log.addHandler(RichHandler())
    log.propagate = False


def _print_result(result) -> None:
    from flows.summary import backtest_columns, backtest_rows

    colour = "green" if result.status == "completed" else "red"
    console.print()
    console.print(
        f"[bold {colour}]{result.status.upper()}[/bold {colour}] {result.strategy_id or ''}"
        + (f"  verdict: [bold]{result.verdict}[/bold]" if result.verdict else "")
    )
    if result.reason:
        console.print(f"reason: {result.reason}")
    training = result.metrics.get("training")
    if training:
        console.print(
            f"training: validation accuracy {training['accuracy']:.3f} (majority baseline "
            f"{training['baseline_accuracy']:.3f}), "
            f"loss {training['initial_loss']:.3f} -> {training['final_loss']:.3f}, "
            f"{training['epochs_run']} epochs"
        )
    backtest = result.metrics.get("backtest")
    if backtest:
        table = Table("metric", *backtest_columns(backtest))
        for row in backtest_rows(backtest):
            table.add_row(*row)
        console.print(table)
    if result.held_out:
        console.print(result.held_out)
    cycle_llm = result.llm.get("cycle")
    if cycle_llm:
        console.print(
            f"Claude ({result.llm['model']}): {cycle_llm['calls']} calls, {cycle_llm['input_tokens']} input + "
            f"{cycle_llm['cache_read_tokens']} cache-read + {cycle_llm['cache_write_tokens']} cache-write + "
            f"{cycle_llm['output_tokens']} output tokens, ${cycle_llm['cost_usd']:.4f}"
        )
    for name, path in result.artifacts.items():
        console.print(f"  {name:<11} {path}")
    console.print(f"run {result.run_id} in {result.duration_s:.1f} s")

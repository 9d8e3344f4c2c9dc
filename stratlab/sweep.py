"""`stratlab sweep`: every combination of a contract's optimisation space, in this process (a Prefect
flow run), with a progress bar, a leaderboard and a report folder."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stratlab.common import console, fail, prepare_prefect_env


def sweep(
    strategy: Annotated[Path, typer.Option(help="Contract to sweep, e.g. strategies/ema_cross_atr.yaml.")],
    symbol: Annotated[str | None, typer.Option(help="Market, e.g. EURUSD (default: the contract's).")] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="Bar size, e.g. 1h (default: the contract's).")
    ] = None,
    method: Annotated[str, typer.Option(help="grid (every combination) or optuna (a TPE sample).")] = "grid",
    max_combos: Annotated[int, typer.Option(help="Grid limit, or the number of Optuna trials.")] = 10_000,
    batch: Annotated[int, typer.Option(help="Optuna: combinations per batch.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed for Optuna and model training.")] = 42,
    objective: Annotated[str, typer.Option(help="sharpe, sortino, total_return or calmar.")] = "sharpe",
    min_trades: Annotated[
        int | None, typer.Option(help="Fewer closed trades cannot win (default: the contract's gate).")
    ] = None,
    top: Annotated[int, typer.Option(help="Rows of the leaderboard.")] = 10,
    dask: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address, or local:N (default: $STRATLAB_DASK_ADDRESS, else none)."),
    ] = None,
    chunk: Annotated[
        int | None, typer.Option(help="Combinations per chunk (default: from the bar count).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Sweep a contract's optimisation space on its selection bars (never the held-out part).

    Exit status: 0 done, 1 an error (the message names the field).
    """
    if not strategy.is_file():
        raise fail(f"--strategy: {strategy} does not exist")
    prepare_prefect_env()
    from pydantic import ValidationError

    from flows.sweep import PROGRESS_LISTENERS, SweepParams, check_request
    from flows.sweep import sweep as sweep_flow

    try:
        params = SweepParams(
            strategy_file=str(strategy),
            symbol=symbol,
            timeframe=timeframe,
            method=method,
            max_combos=max_combos,
            batch=batch,
            seed=seed,
            objective=objective,
            min_trades=min_trades,
            top=top,
            dask=dask,
            chunk=chunk,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    try:
        check_request(params)
    except ValueError as exc:  # ContractError, SweepInputError, an operator's floor: each names its field
        raise fail(str(exc)) from None
    logging.getLogger("distributed").setLevel(logging.ERROR)
    bar = Progress(
        TextColumn("sweeping"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    task = None

    def show(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task("sweep", total=total)
        bar.update(task, completed=done, total=total)

    if not as_json:
        bar.start()
        PROGRESS_LISTENERS.append(show)
    try:
        result = sweep_flow(params)
    except Exception as exc:  # the flow's own message names the field; no traceback for bad input
        raise fail(str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}") from None
    finally:
        if not as_json:
            bar.stop()
            PROGRESS_LISTENERS.remove(show)
    if as_json:
        sys.stdout.write(result.model_dump_json() + "\n")
        return
    _print_result(result)


def _print_result(result) -> None:
    console.print(
        f"[bold]{result.strategy_id}[/bold] on {result.symbol} {result.timeframe}: {result.method}, "
        f"{result.trials:,} trials ({result.evaluated:,} distinct of a {result.grid_size:,} grid), "
        f"{result.selection_part} bars {result.start[:10]} to {result.end[:10]}, {result.seconds:.1f} s"
    )
    if not result.leaderboard:
        return
    keys = list(result.importance)
    names = [k.removeprefix("risk_model.") for k in keys]
    table = Table(
        *names, f"score ({result.objective})", "return", "max dd", "trades", "win", title="Leaderboard"
    )
    for row in result.leaderboard:
        table.add_row(
            *(f"{row[k]:g}" for k in keys),
            _num(row["score"]),
            _pct(row["total_return"]),
            _pct(row["max_drawdown"]),
            str(row["trades"]),
            _pct(row["win_rate"]),
        )
    console.print(table)
    if result.best is None:
        console.print(f"[red]no combination may win[/red]: fewer than {result.min_trades} trades everywhere")
    console.print(f"report: {result.report_dir}")


def _num(value) -> str:
    return "n/a" if value is None or isinstance(value, str) else f"{value:.3f}"


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.2%}"

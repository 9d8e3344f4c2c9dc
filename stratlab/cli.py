"""`stratlab`: run research cycles, list market data and strategies.

Heavy libraries (Prefect, torch, vectorbt) are imported inside the commands that need them, so
`stratlab --help` and the listing commands answer at once.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Strategy Lab: design, train, backtest and assess trading strategies.", no_args_is_help=True
)
data_app = typer.Typer(help="Market data shipped in the repository or added by you.", no_args_is_help=True)
strategies_app = typer.Typer(help="Strategy contracts and their results.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(strategies_app, name="strategies")

console = Console()
err = Console(stderr=True)

EXIT_COMPLETED, EXIT_ERROR, EXIT_GATE = 0, 1, 2


def prepare_prefect_env() -> None:
    """Defaults for Prefect on a small, offline machine; must run before Prefect is imported.
    The ephemeral API needs 12-17 s to start here; run logs go to the UI/API, not the terminal, where
    our own progress is shown."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_ERROR)


@app.command()
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
            raise _fail(f"{option}: '{value}' is not one of auto, claude, local")
    if "claude" in (designer, assessor) and not os.environ.get("ANTHROPIC_API_KEY"):
        raise _fail(
            "Claude needs ANTHROPIC_API_KEY in the environment (or use --designer local --assessor local)"
        )
    if strategy is not None and not strategy.is_file():
        raise _fail(f"--strategy: {strategy} does not exist")
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


def _use_server() -> str:
    """Point Prefect at the server `stratlab up` started (or $PREFECT_API_URL); before importing it."""
    from deployments.stack import api_url

    api = api_url()
    if not api:
        raise _fail("no Prefect server: run `stratlab up` (or set PREFECT_API_URL)")
    os.environ["PREFECT_API_URL"] = api
    prepare_prefect_env()
    return api


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port for a new server on 127.0.0.1.")] = 4200,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start (or find) a Prefect server on 127.0.0.1, set it up, deploy prefect.yaml, start a worker."""
    from deployments.stack import up as stack_up

    prepare_prefect_env()
    try:
        stack = stack_up(port=port, say=(lambda _: None) if as_json else console.print)
    except (RuntimeError, OSError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _print_json({**stack.model_dump(), "ui_url": stack.ui_url})
    else:
        console.print(f"[bold green]ready[/bold green]  Prefect UI: {stack.ui_url}")


@app.command()
def down(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Stop the worker and server that `stratlab up` started."""
    from deployments.stack import StopRefused
    from deployments.stack import down as stack_down

    notes: list[str] = []  # with --json, what `down` says (e.g. why a pid was left alone) goes in the JSON
    try:
        stopped = stack_down(say=notes.append if as_json else console.print)
    except (StopRefused, OSError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _print_json({"stopped": stopped, "notes": notes})


@app.command()
def trigger(
    strategy: Annotated[
        str | None, typer.Option(help="Contract to run, as the worker sees the path.")
    ] = None,
    designer: Annotated[str, typer.Option(help="auto, claude or local.")] = "auto",
    assessor: Annotated[str, typer.Option(help="auto, claude or local.")] = "auto",
    symbol: Annotated[str | None, typer.Option()] = None,
    seed: Annotated[int, typer.Option()] = 42,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start a cycle on the research-cycle deployment, or say why not (cycle_in_progress, budget_exhausted)."""
    _use_server()
    from deployments.cycles import trigger as start

    params = {
        "strategy_file": strategy,
        "designer": designer,
        "assessor": assessor,
        "symbol": symbol,
        "seed": seed,
    }
    answer = start({k: v for k, v in params.items() if v is not None})
    if as_json:
        _print_json(answer.model_dump())
    elif answer.triggered:
        console.print(f"[green]started[/green] research cycle, run id {answer.run_id}")
    else:
        console.print(f"[yellow]not started[/yellow]: {answer.reason} ({answer.detail})")
    raise typer.Exit(0 if answer.triggered else EXIT_GATE)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The active cycle (phase, strategy, elapsed, run id) and the last cycles; reads Prefect's API only."""
    _use_server()
    from deployments.cycles import status as read_status

    report = read_status()
    if as_json:
        _print_json(report)
        return
    active = report["active"]
    if active:
        console.print(
            f"[bold]active[/bold] {active['run_id']} {active['state']}: phase {active['phase'] or '-'}, "
            f"strategy {active['strategy_id'] or '-'}, {active['elapsed_s']:.0f} s"
        )
    else:
        console.print("no active cycle")
    table = Table("run id", "name", "outcome", "reason / message", "seconds")
    for run in report["last"]:
        table.add_row(
            run["run_id"], run["name"], run["state"], run["message"] or "", f"{run['elapsed_s'] or 0:.0f}"
        )
    console.print(table)


@app.command()
def cancel(
    run_id: Annotated[str | None, typer.Argument(help="Run to cancel; default: the active cycle.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Cancel the active cycle (or RUN_ID); the worker stops it and its slot is released."""
    _use_server()
    from deployments.cycles import cancel as request_cancel

    answer = request_cancel(run_id)
    if as_json:
        _print_json(answer)
    elif answer["cancelled"]:
        console.print(f"cancelling {answer['run_id']}")
    else:
        console.print(f"nothing cancelled: {answer['reason']}")
    raise typer.Exit(0 if answer["cancelled"] else EXIT_ERROR)


@app.command()
def budget(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Today's LLM spend (UTC day), what is left, open reservations, and cost per cycle. Reads only the
    local ledger: no LLM call, no network."""
    from tasks.budget import BudgetLedger

    try:
        status = BudgetLedger().status()
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        sys.stdout.write(status.model_dump_json() + "\n")
        return
    console.print(
        f"[bold]Budget {status.day} (UTC)[/bold]: spent ${status.spent_usd:.4f} of ${status.limit_usd:.2f}, "
        f"reserved ${status.reserved_usd:.4f}, remaining ${status.remaining_usd:.4f} ({status.calls} calls)"
    )
    for r in status.reservations:
        note = " orphaned: its process is gone; counted at the worst case" if r.orphaned else ""
        console.print(
            f"  open reservation {r.id[:8]} {r.purpose} ${r.reserved_usd:.4f} since {r.created_at}{note}"
        )
    if status.per_cycle:
        table = Table("cycle (run id)", "cost USD")
        for cycle_id, cost in status.per_cycle.items():
            table.add_row(cycle_id, f"{cost:.4f}")
        console.print(table)
    console.print(f"ledger: {status.ledger}")


@data_app.command("list")
def data_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Datasets available to cycles, with their span, size, hash and origin."""
    from tasks.data import DataError, list_datasets

    try:
        datasets = list_datasets()
    except DataError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps([d.model_dump(mode="json") for d in datasets], indent=2) + "\n")
        return
    table = Table("symbol", "timeframe", "rows", "start", "end", "source", "license")
    for d in datasets:
        table.add_row(
            d.symbol,
            d.timeframe,
            str(d.rows),
            f"{d.start:%Y-%m-%d}",
            f"{d.end:%Y-%m-%d}",
            d.source.split(" (")[0],
            d.license,
        )
    console.print(table)


@strategies_app.command("list")
def strategies_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every contract in the strategies folder, with its latest run's outcome."""
    from tasks.catalogue import strategy_summaries

    rows = strategy_summaries()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(
        "strategy",
        "market",
        "model",
        "runs",
        "last run",
        "verdict",
        "Sharpe (selection)",
        "Sharpe (held-out)",
    )
    for r in rows:
        table.add_row(
            r["strategy_id"],
            r["market"],
            r["model"],
            str(r.get("runs", 0)),
            r.get("status") or r.get("error") or "never run",
            r.get("verdict") or "",
            *("" if r.get(k) is None else f"{r[k]:.2f}" for k in ("selection_sharpe", "held_out_sharpe")),
        )
    console.print(table)


@strategies_app.command("show")
def strategies_show(
    name: Annotated[str, typer.Argument(help="strategy_id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A contract and its latest results."""
    from tasks.catalogue import strategy_detail

    try:
        detail = strategy_detail(name)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps(detail, indent=2, default=str) + "\n")
        return
    console.print(f"[bold]{name}[/bold]  {detail['contract_file']}")
    console.print(detail["contract_yaml"], highlight=False, markup=False)
    for key in ("cycle", "assessment"):
        if detail.get(key):
            console.print(f"[bold]{key}[/bold]")
            console.print_json(json.dumps(detail[key], default=str))


if __name__ == "__main__":
    app()

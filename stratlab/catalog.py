"""`stratlab data / strategies / budget`: read-only views of the data, the strategies folder and the
LLM spend ledger. None of them calls an LLM or starts Prefect."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stratlab.common import console, fail

data_app = typer.Typer(help="Market data shipped in the repository or added by you.", no_args_is_help=True)
strategies_app = typer.Typer(help="Strategy contracts and their results.", no_args_is_help=True)


def budget(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Today's LLM spend (UTC day), what is left, open reservations, and cost per cycle. Reads only the
    local ledger: no LLM call, no network."""
    from tasks.llm.budget import BudgetLedger

    try:
        status = BudgetLedger().status()
    except ValueError as exc:
        raise fail(str(exc)) from None
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
        raise fail(str(exc)) from None
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
    """A contract and its latest results, and where the latest run's equity picture is."""
    from tasks.catalogue import strategy_detail
    from tasks.observe.pictures import EQUITY_PNG

    try:
        detail = strategy_detail(name)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    has_picture = EQUITY_PNG in detail["files"]  # not when never run, nor when no backtest ran
    detail["equity_png"] = f"{detail['results_dir']}/{EQUITY_PNG}" if has_picture else None
    if as_json:
        sys.stdout.write(json.dumps(detail, indent=2, default=str) + "\n")
        return
    console.print(f"[bold]{name}[/bold]  {detail['contract_file']}")
    console.print(detail["contract_yaml"], highlight=False, markup=False)
    for key in ("cycle", "assessment"):
        if detail.get(key):
            console.print(f"[bold]{key}[/bold]")
            console.print_json(json.dumps(detail[key], default=str))
    if detail["results_dir"]:
        shown = detail["equity_png"] or "none (no backtest ran in the latest run)"
        console.print(f"[bold]equity picture[/bold] {escape(shown)}", highlight=False, soft_wrap=True)

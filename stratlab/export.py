"""`stratlab export NAME|FILE`: a contract as a TradingView Pine v6 script, with ``export.json``
(diagnostics for whatever the target cannot express exactly, and optionally the parity check)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stratlab.common import console, fail, print_json


def export(
    strategy: Annotated[str, typer.Argument(help="strategy_id in the strategies folder, or a contract file")],
    target: Annotated[str, typer.Option(help="pine (cTrader C# is not built yet), or all")] = "all",
    out: Annotated[Path | None, typer.Option(help="Folder for the files (default: exports/<id>)")] = None,
    parity: Annotated[
        bool, typer.Option(help="Run each export against the engine on the contract's market (PyneCore)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print export.json.")] = False,
) -> None:
    """Export a strategy to trading platforms."""
    from strategy_contract import ContractError
    from tasks.export.files import TARGETS, export_all, resolve_contract

    try:
        contract = resolve_contract(strategy)
        folder = out or Path("exports") / contract.strategy_id
        summary = export_all(contract, list(TARGETS) if target == "all" else [target], folder, parity)
    except (ValueError, FileNotFoundError, ContractError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(summary)
        return
    for name, result in summary["targets"].items():
        if result["file"] is None:
            console.print(f"{name}: refused: {result['refused']}")
            continue
        console.print(f"{name}: {folder / result['file']}")
        for d in result["diagnostics"]:
            console.print(f"  {d['severity']}: {d['field']}: {d['message']}", highlight=False)
        if "parity" in result:
            p = result["parity"]
            console.print(
                f"  parity: {p['identical']} of {max(p['engine_trades'], p['target_trades'])} trades identical "
                f"(engine {p['engine_trades']}, {name} {p['target_trades']})"
            )

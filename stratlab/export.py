"""`stratlab export NAME|FILE`: a contract as a TradingView Pine v6 script and a cTrader C# cBot, with
``export.json`` (diagnostics for whatever a target cannot express exactly, and optionally the parity
check). The same export runs as the `export_strategy` flow (the `export-strategy` deployment's form);
this command runs it in its own process, with the flow's defaults (flows/export_strategy.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stratlab.common import console, fail, print_json

# Named here rather than imported: `stratlab --help` must not import the exporters (and Prefect).
# tests/test_export_flow.py checks that this says what tasks.export.files.TARGETS holds.
BUILT_TARGETS = ("pine", "ctrader")


def export(
    strategy: Annotated[str, typer.Argument(help="strategy_id in the strategies folder, or a contract file")],
    target: Annotated[
        str, typer.Option(help=f"{'|'.join((*BUILT_TARGETS, 'all'))}: one target, or every built one")
    ] = "all",
    out: Annotated[
        Path | None, typer.Option(help="Folder for the files (default: exports/<id> in the repository)")
    ] = None,
    parity: Annotated[
        bool, typer.Option(help="Compare each export's trades with the engine's on the contract's market")
    ] = False,
    model: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Trained checkpoint (.ckpt) of a neuro-fuzzy strategy, to inline"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print export.json.")] = False,
) -> None:
    """Export a strategy to trading platforms."""
    from flows.export_strategy import default_out, parity_sentence, targets_of
    from strategy_contract import ContractError
    from tasks.export.files import export_all, resolve_contract

    try:
        contract = resolve_contract(strategy)
        folder = out or default_out(contract.strategy_id)
        summary = export_all(contract, targets_of(target), folder, parity, model_file=model)
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
            console.print(f"  parity: {parity_sentence(name, result['parity'])}")

"""The `export_strategy` flow: a contract as each platform's file (TradingView Pine v6, cTrader C#) with
its ``export.json``, and a summary of the run as a markdown artifact.

The work is ``tasks/export/files.py``'s :func:`export_all`, run as one task; the flow resolves the
contract (a name that is not a valid strategy_id fails the run before anything is written) and publishes
what each target wrote, what it could not express exactly (the diagnostics), what it refused and why,
and the parity check when asked. `stratlab export` runs the same export in its own process without a
flow run; the defaults both use (the folder, what "all" means, the parity sentence) are here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger
from prefect.states import Completed, State

from tasks.edge import uncached_step
from tasks.export.files import TARGETS, export_all, resolve_contract
from tasks.observe.traces import configure_tracing
from tasks.places import exports_dir

configure_tracing()  # before any run: Prefect's spans need this process's tracer provider

# The run form's choices: each built target, or all of them ("all" follows TARGETS as targets are built).
ExportTarget = Literal[(*TARGETS, "all")]  # type: ignore[valid-type]

# Uncached: it reads the market data folder ($STRATLAB_DATA_DIR) and writes files a person may delete.
export_files = uncached_step(export_all, "export-files")


def default_out(strategy_id: str) -> Path:
    """Where a strategy's exports go when no folder is given: ``<exports_dir>/<strategy_id>``."""
    return exports_dir() / strategy_id


def targets_of(target: str) -> list[str]:
    """The targets a ``--target`` / ``target`` value names: every built one for ``all``."""
    return list(TARGETS) if target == "all" else [target]


def parity_sentence(target: str, parity: dict) -> str:
    """E.g. ``76 of 76 trades identical (engine 76, pine 76)``."""
    most = max(parity["engine_trades"], parity["target_trades"])
    return (
        f"{parity['identical']} of {most} trades identical "
        f"(engine {parity['engine_trades']}, {target} {parity['target_trades']})"
    )


@flow(name="export_strategy", log_prints=False)
def export_strategy(
    strategy: str,
    target: ExportTarget = "all",
    parity: bool = False,
    model_file: str | None = None,
    out: str | None = None,
) -> State:
    """Export a strategy to trading platforms: each target's file and export.json in one folder.

    Args:
        strategy: A strategy_id in the strategies folder (e.g. ema_cross_atr), or a contract file
            (e.g. strategies/ema_cross_atr.yaml, or a campaign's best_contract.yaml).
        target: pine (TradingView Pine v6), ctrader (cTrader C# cBot), or all of the built targets.
        parity: Also run each export on the contract's market and compare its trades with the engine's
            (slower: PyneCore for Pine, the C# compiler for cTrader).
        model_file: The trained Lightning checkpoint (.ckpt) of a neuro-fuzzy strategy, inlined into the
            exports; leave empty for a rule strategy.
        out: Folder for the files; empty: exports/<strategy_id> in the repository.
    """
    contract = resolve_contract(strategy)
    folder = Path(out) if out else default_out(contract.strategy_id)
    summary = export_files(
        contract, targets_of(target), folder, parity, Path(model_file) if model_file else None
    )
    create_markdown_artifact(
        markdown=export_markdown(summary, folder),
        key="export-" + re.sub(r"[^a-z0-9]+", "-", contract.strategy_id.lower()).strip("-")[:90],
        description=f"Export of {contract.strategy_id}",
    )
    message = f"{contract.strategy_id}: {outcome(summary)} in {folder}"
    get_run_logger().info(message)
    return Completed(message=message, data=summary)


def outcome(summary: dict) -> str:
    """Each target's file or refusal, in a line: ``pine ema_cross_atr.pine, ctrader refused``."""
    return ", ".join(
        f"{name} {result['file']}" if result["file"] else f"{name} refused"
        for name, result in summary["targets"].items()
    )


def _file(result: dict) -> str:
    return f"`{result['file']}`" if result["file"] else "refused"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def export_markdown(summary: dict, folder: Path) -> str:
    """The run's artifact: per target its file, its diagnostics, its refusal, its parity."""
    lines = [
        f"# Export of `{summary['strategy_id']}`",
        "",
        f"Folder: `{folder}` (with `export.json`); contract sha256 `{summary['contract_sha256']}`.",
        "",
        "| target | file | diagnostics | parity |",
        "|---|---|---|---|",
    ]
    for name, result in summary["targets"].items():
        parity = result.get("parity")
        share = "-" if parity is None else f"{parity['share']:.2%} identical"
        lines.append(f"| {name} | {_file(result)} | {len(result['diagnostics'])} | {share} |")
    for name, result in summary["targets"].items():
        lines += ["", f"## {name}: {_file(result)}", ""]
        if not result["file"]:
            lines += [f"Refused: {_cell(result['refused'])}", ""]
        if result["diagnostics"]:
            lines += ["| severity | field | message |", "|---|---|---|"]
            lines += [
                f"| {d['severity']} | `{d['field']}` | {_cell(d['message'])} |" for d in result["diagnostics"]
            ]
        else:
            lines.append("Nothing the target could not express exactly.")
        if "parity" in result:
            p = result["parity"]
            lines += [
                "",
                f"Parity on {summary['provenance']['data_source']}: {parity_sentence(name, p)}, "
                f"share {p['share']:.2%}.",
            ]
            lines += [f"- {_cell(m.get('reason', m))}" for m in p["mismatches"][:5]]
    return "\n".join(lines) + "\n"

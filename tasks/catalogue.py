"""Read-only views of the strategies folder: what exists and how its latest run went."""

from __future__ import annotations

import json
from pathlib import Path

from strategy_contract import ContractError, load_strategy, strategy_to_yaml, validate_strategy_id
from tasks.storage import latest_run, run_folders, strategies_dir, strategy_file


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def strategy_summaries(directory: Path | None = None) -> list[dict]:
    """One row per contract file: market, model kind, last outcome; a broken file shows its error."""
    root = directory or strategies_dir()
    rows = []
    for path in sorted(root.glob("*.yaml")):
        row: dict = {"strategy_id": path.stem, "file": str(path)}
        try:
            strategy = load_strategy(path)
        except ContractError as exc:
            row.update(market="?", model="?", error=f"invalid: {exc.problems[0][0]} {exc.problems[0][1]}")
            rows.append(row)
            continue
        row.update(market=f"{strategy.symbol} {strategy.timeframe}", model=strategy.model.kind)
        runs = run_folders(strategy.strategy_id, root)
        cycle = _read_json(runs[-1] / "cycle.json") if runs else None
        row["runs"] = len(runs)
        if cycle:
            backtest = cycle.get("metrics", {}).get("backtest", {})
            row.update(
                status=cycle.get("status"),
                verdict=cycle.get("verdict"),
                reason=cycle.get("reason"),
                selection_sharpe=backtest.get("selection", {}).get("sharpe"),
                held_out_sharpe=backtest.get("held_out", {}).get("sharpe"),
                run_id=cycle.get("run_id"),
            )
        rows.append(row)
    return rows


def strategy_detail(name: str, directory: Path | None = None) -> dict:
    """The contract of `name`, its runs and the latest run's results; the name is validated before it
    becomes a path."""
    validate_strategy_id(name)
    path = strategy_file(name, directory)
    if not path.is_file():
        known = [p.stem for p in sorted((directory or strategies_dir()).glob("*.yaml"))]
        raise FileNotFoundError(
            f"no strategy '{name}' in {path.parent} (known: {', '.join(known) or 'none'})"
        )
    strategy = load_strategy(path)
    results = latest_run(name, directory)
    return {
        "strategy_id": name,
        "contract_file": str(path),
        "contract": strategy.model_dump(mode="json"),
        "contract_yaml": strategy_to_yaml(strategy),
        "runs": [p.name for p in run_folders(name, directory)],
        "results_dir": str(results) if results else None,
        "files": sorted(p.name for p in results.iterdir()) if results else [],
        "cycle": _read_json(results / "cycle.json") if results else None,
        "assessment": _read_json(results / "assessment.json") if results else None,
    }

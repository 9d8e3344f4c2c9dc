"""Write a contract's exports and their ``export.json`` (diagnostics, parity) into a folder."""

from __future__ import annotations

from pathlib import Path

from strategy_contract import Strategy, load_strategy, validate_strategy_id
from strategy_contract.io import atomic_write_json, atomic_write_text
from tasks.data import frame_sha256, load_bars
from tasks.export.common import Export, ExportRefused, contract_hash
from tasks.export.ctrader import export_ctrader
from tasks.export.pine import export_pine
from tasks.provenance import provenance
from tasks.storage import strategy_file

TARGETS = ("pine", "ctrader")


def resolve_contract(name_or_file: str) -> Strategy:
    """A contract from a ``.yaml`` file, or from the strategies folder by strategy_id (validated before it
    becomes a path)."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml"):
        return load_strategy(path)
    validate_strategy_id(name_or_file)
    found = strategy_file(name_or_file)
    if not found.is_file():
        raise FileNotFoundError(f"no strategy '{name_or_file}' in {found.parent}")
    return load_strategy(found)


def load_model(strategy: Strategy, model_file: Path | None):
    """The trained model of a neuro-fuzzy strategy, inlined for the exports (None for a rule strategy)."""
    if model_file is None or not strategy.has_model:
        return None
    from tasks.export.model import inline_model

    path = Path(model_file)
    if not path.is_file():
        raise FileNotFoundError(f"--model: no checkpoint at {path}")
    try:
        return inline_model(strategy, path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"--model {path}: {exc}") from None


def export_one(target: str, strategy: Strategy, reference_price: float, model) -> Export:
    if target == "pine":
        return export_pine(strategy, reference_price=reference_price, model=model)
    return export_ctrader(strategy, model=model)


def export_all(
    strategy: Strategy, targets: list[str], out: Path, parity: bool = False, model_file: Path | None = None
) -> dict:
    """Each target's file in ``out`` and a summary (also ``out/export.json``). A refused target writes no
    file and says why; ``parity`` runs each export against the engine on the contract's market;
    ``model_file`` is the trained checkpoint a neuro-fuzzy strategy needs."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"--target: {', '.join(unknown)} not built yet (built: {', '.join(TARGETS)})")
    model = load_model(strategy, model_file)
    bars = load_bars(strategy.symbol, strategy.timeframe)
    summary: dict = {
        "strategy_id": strategy.strategy_id,
        "contract_sha256": contract_hash(strategy),
        "provenance": provenance(
            0, frame_sha256(bars), f"{strategy.symbol} {strategy.timeframe} market data"
        ),
        "targets": {},
    }
    for target in targets:
        try:
            exported = export_one(target, strategy, float(bars["close"].iloc[-1]), model)
        except ExportRefused as exc:
            summary["targets"][target] = {
                "file": None,
                "refused": str(exc),
                "diagnostics": [d.model_dump() for d in exc.diagnostics],
            }
            continue
        atomic_write_text(out / exported.filename, exported.text)
        entry = {"file": exported.filename, "diagnostics": [d.model_dump() for d in exported.diagnostics]}
        if parity:
            from tasks.export.parity import ctrader_parity, pine_parity

            folder = out / ".parity" / target
            checkpoint = Path(model_file).read_bytes() if model is not None else None
            run = pine_parity if target == "pine" else ctrader_parity
            result = run(strategy, bars, folder, checkpoint=checkpoint)
            entry["parity"] = result.model_dump()
        summary["targets"][target] = entry
    atomic_write_json(out / "export.json", summary)
    return summary

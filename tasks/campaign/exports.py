"""A promoted candidate, exported: ``reports/campaigns/<id>/exports/`` holds each target's file and its
``export.json``, from ``best_contract.yaml`` (and ``best_model.ckpt``, the model its holdout was scored
with, for a neuro-fuzzy candidate)."""

from __future__ import annotations

from pathlib import Path

from strategy_contract import load_strategy
from tasks.export.files import TARGETS, export_all


def export_candidate(folder: Path) -> dict:
    """Export the campaign's chosen contract to every built target; returns the record's ``exports``
    entry: the folder, and per target its file or why it refused. Raises what the export raises."""
    contract = load_strategy(folder / "best_contract.yaml")
    checkpoint = folder / "best_model.ckpt"
    model_file = checkpoint if contract.has_model and checkpoint.is_file() else None
    out = folder / "exports"
    summary = export_all(contract, list(TARGETS), out, model_file=model_file)
    return {
        "folder": str(out),
        "strategy_id": contract.strategy_id,
        "model_file": checkpoint.name if model_file else None,
        "targets": {
            name: {"file": result["file"]} if result["file"] else {"file": None, "refused": result["refused"]}
            for name, result in summary["targets"].items()
        },
    }

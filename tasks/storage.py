"""Where cycles keep their results, and how they get there without half-written files.

A cycle writes into a private staging folder; only a cycle that reaches a verdict (completed, or a gate
said no) is committed, by renames, into ``strategies/<id>.yaml`` and ``strategies/<id>/``. An error or
a cancellation discards the staging folder, so ``strategies/`` never holds a partial result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

from pydantic import BaseModel

from strategy_contract import atomic_write_json, load_strategy, strategy_to_yaml, validate_strategy_id
from strategy_contract.io import atomic_write_bytes, atomic_write_text
from strategy_contract.models import Strategy

REPO = Path(__file__).resolve().parents[1]
STAGING = ".staging"


def strategies_dir() -> Path:
    """The strategies folder: ``$STRATLAB_STRATEGIES_DIR`` or the repository's ``strategies/``."""
    return Path(os.environ.get("STRATLAB_STRATEGIES_DIR") or REPO / "strategies")


def strategy_file(name: str, directory: Path | None = None) -> Path:
    return (directory or strategies_dir()) / f"{validate_strategy_id(name)}.yaml"


def results_dir(name: str, directory: Path | None = None) -> Path:
    return (directory or strategies_dir()) / validate_strategy_id(name)


class Stage:
    """A private folder for one cycle's files until they are committed or discarded."""

    def __init__(self, directory: Path | None = None, run_id: str | None = None):
        self.root = directory or strategies_dir()
        self.path = self.root / STAGING / (run_id or uuid.uuid4().hex)
        self.results = self.path / "results"
        self.results.mkdir(parents=True, exist_ok=True)

    def write_json(self, name: str, data: BaseModel | dict) -> Path:
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        path = self.results / name
        atomic_write_json(path, payload)
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        path = self.results / name
        atomic_write_bytes(path, data)
        return path

    def commit(self, strategy: Strategy) -> tuple[Path, Path]:
        """Move the results into place (replacing an earlier run of the same strategy), then the contract."""
        final_results = results_dir(strategy.strategy_id, self.root)
        if final_results.exists() and not final_results.is_dir():
            raise FileExistsError(
                f"{final_results} is a file, not a results folder; move it away and run again"
            )
        if final_results.exists():
            trash = self.path / "previous"
            os.replace(final_results, trash)
        os.replace(self.results, final_results)
        contract = strategy_file(strategy.strategy_id, self.root)
        if not (contract.exists() and _same_strategy(contract, strategy)):
            atomic_write_text(contract, strategy_to_yaml(strategy))  # keeps a hand-written file's comments
        self.discard()
        return contract, final_results

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.root / STAGING).rmdir()


def staged_runs(directory: Path | None = None) -> list[str]:
    """Run ids that have a staging folder: live cycles, or ones that died before they could clean up."""
    staging = (directory or strategies_dir()) / STAGING
    return sorted(p.name for p in staging.iterdir() if p.is_dir()) if staging.is_dir() else []


def discard_stage(run_id: str, directory: Path | None = None) -> None:
    shutil.rmtree((directory or strategies_dir()) / STAGING / run_id, ignore_errors=True)


def _same_strategy(path: Path, strategy: Strategy) -> bool:
    try:
        return load_strategy(path) == strategy
    except ValueError:
        return False


class PastCycle(BaseModel):
    """What later designs learn from: the contract, outcome and in-sample numbers of a finished cycle."""

    strategy_id: str
    family: str
    status: str
    reason: str | None = None
    in_sample_sharpe: float | None = None
    in_sample_return: float | None = None
    verdict: str | None = None
    learnings: list[str] = []
    started_at: str = ""


def load_history(directory: Path | None = None) -> list[tuple[PastCycle, Strategy]]:
    """Finished cycles under the strategies folder, in name order; unreadable entries are skipped."""
    root = directory or strategies_dir()
    history = []
    for record in sorted(root.glob("*/cycle.json")):
        contract = root / f"{record.parent.name}.yaml"
        try:
            past = PastCycle.model_validate(json.loads(record.read_text())["history"])
            history.append((past, load_strategy(contract)))
        except (OSError, ValueError, KeyError):
            continue
    return history

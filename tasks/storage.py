"""Where cycles keep their results, and how they get there without half-written files.

Layout of the strategies folder::

    strategies/<id>.yaml                      the contract; written once, when a new id first lands, never rewritten
    strategies/<id>/<stamp>-<run>/            one folder per cycle run: contract.yaml (as run), cycle.json,
                                              training.json, model.ckpt, backtest.json, assessment.json, ...
    strategies/.staging/<run id>/             a live cycle's private folder (owner.json says whose)

A cycle writes into its staging folder; only a cycle that reaches a verdict (completed, or a gate said
no) is committed, by ONE rename of its complete results folder into ``strategies/<id>/``. A crash can
leave the results either staged or committed, never half of them. Runs never replace earlier runs.
An error or a cancellation discards the staging folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from strategy_contract import atomic_write_json, load_strategy, strategy_to_yaml, validate_strategy_id
from strategy_contract.io import atomic_write_bytes, atomic_write_text
from strategy_contract.models import Strategy
from tasks.places import strategies_dir
from tasks.processes import process_identity, same_process

REPO = Path(__file__).resolve().parents[1]
STAGING = ".staging"
OWNER = "owner.json"
RUN_CONTRACT = "contract.yaml"


def strategy_file(name: str, directory: Path | None = None) -> Path:
    return (directory or strategies_dir()) / f"{validate_strategy_id(name)}.yaml"


def results_dir(name: str, directory: Path | None = None) -> Path:
    """The folder holding every run of strategy `name`, one sub-folder per run."""
    return (directory or strategies_dir()) / validate_strategy_id(name)


def run_folders(name: str, directory: Path | None = None) -> list[Path]:
    """The committed runs of `name`, oldest first (folder names start with a UTC timestamp)."""
    root = results_dir(name, directory)
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def latest_run(name: str, directory: Path | None = None) -> Path | None:
    runs = run_folders(name, directory)
    return runs[-1] if runs else None


class Stage:
    """A private folder for one cycle's files until they are committed or discarded.

    It records its owner (host, pid and process identity), so that a later cycle can tell a stage whose
    process is gone from one that is alive elsewhere (another Prefect home on the same folder).
    """

    def __init__(self, directory: Path | None = None, run_id: str | None = None):
        self.root = directory or strategies_dir()
        self.run_id = run_id or uuid.uuid4().hex
        self.path = self.root / STAGING / self.run_id
        self.results = self.path / "results"
        self.results.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.path / OWNER,
            {"host": socket.gethostname(), "pid": os.getpid(), "identity": process_identity(os.getpid())},
        )

    def write_json(self, name: str, data: BaseModel | dict) -> Path:
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        path = self.results / name
        atomic_write_json(path, payload)
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        path = self.results / name
        atomic_write_bytes(path, data)
        return path

    def run_folder_name(self, started_at: datetime | None = None) -> str:
        """``20261122T041500Z-1a2b3c4d``: sorts by start time; the run id's head keeps it unique."""
        stamp = (started_at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}-{self.run_id.replace('-', '')[:8]}"

    def commit(self, strategy: Strategy, started_at: datetime | None = None) -> tuple[Path, Path]:
        """Move the complete results folder into ``strategies/<id>/<run>/`` with one rename, then write
        ``strategies/<id>.yaml`` if no contract of that name exists yet. Nothing is replaced."""
        atomic_write_text(self.results / RUN_CONTRACT, strategy_to_yaml(strategy))
        parent = results_dir(strategy.strategy_id, self.root)
        if parent.exists() and not parent.is_dir():
            raise FileExistsError(f"{parent} is a file, not a results folder; move it away and run again")
        parent.mkdir(exist_ok=True)
        final = parent / self.run_folder_name(started_at)
        os.rename(self.results, final)  # fails rather than replace: a run folder is never overwritten
        contract = strategy_file(strategy.strategy_id, self.root)
        if not contract.exists():
            atomic_write_text(contract, strategy_to_yaml(strategy))
        self.discard()
        return contract, final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):  # other cycles' stages are still there
            (self.root / STAGING).rmdir()


def staged_runs(directory: Path | None = None) -> list[str]:
    """Run ids that have a staging folder: live cycles, or ones that died before they could clean up."""
    staging = (directory or strategies_dir()) / STAGING
    return sorted(p.name for p in staging.iterdir() if p.is_dir()) if staging.is_dir() else []


def stage_owner_gone(run_id: str, directory: Path | None = None) -> bool:
    """True only when the process that owns this stage provably no longer runs: it was on this host and
    its pid now runs nothing, or another process. An unreadable owner or another host proves nothing."""
    owner_file = (directory or strategies_dir()) / STAGING / run_id / OWNER
    try:
        owner = json.loads(owner_file.read_text())
        host, pid, identity = owner["host"], int(owner["pid"]), owner["identity"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return host == socket.gethostname() and identity is not None and not same_process(pid, identity)


def discard_stage(run_id: str, directory: Path | None = None) -> None:
    shutil.rmtree((directory or strategies_dir()) / STAGING / run_id, ignore_errors=True)


class PastCycle(BaseModel):
    """What later designs learn from. Every number here comes from the selection part of the data
    (validation for a fitted model, train + validation for rules): never from the held-out part."""

    strategy_id: str
    family: str
    status: str  # "completed", or "failed" when a gate said no
    reason: str | None = None
    selection_part: str = "train+validation"
    selection_sharpe: float | None = None
    selection_return: float | None = None
    selection_trades: int | None = None
    verdict: str | None = None
    learnings: list[str] = []
    started_at: str = ""


@dataclass
class History:
    """Finished cycles, oldest first, and the records that could not be read (with the reason)."""

    entries: list[tuple[PastCycle, Strategy]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def load_history(directory: Path | None = None) -> History:
    """Every committed run under the strategies folder. A record that cannot be read is reported in
    ``unreadable`` (path: reason), never skipped silently."""
    root = directory or strategies_dir()
    history = History()
    for record in sorted(root.glob("*/cycle.json")):  # the layout before per-run folders
        history.unreadable.append(
            f"{record}: a result of the old layout (strategies/<id>/cycle.json); move the files of "
            f"{record.parent.name}/ into a run folder such as {record.parent.name}/00000000T000000Z-old/ "
            "with the contract as contract.yaml"
        )
    for record in sorted(root.glob("*/*/cycle.json")):
        try:
            past = PastCycle.model_validate(json.loads(record.read_text())["history"])
            strategy = load_strategy(record.parent / RUN_CONTRACT)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            history.unreadable.append(f"{record.parent}: {reason}")
            continue
        history.entries.append((past, strategy))
    history.entries.sort(key=lambda ps: ps[0].started_at)
    return history

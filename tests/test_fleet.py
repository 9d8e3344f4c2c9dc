"""Strategy Lab on a fleet: Debian's PostgreSQL holds Prefect's server database and the budget ledger, and
two workers with separate homes (two "machines") serve one work pool. Everything later steps read (the
contracts and runs, the cached step results) lives in one shared folder, signed with one key.

What a user running several machines relies on: one cycle at a time whatever worker picks a trigger,
the shared ledger never overspent by processes racing on both machines, and a cycle whose worker died
re-run on the other worker, reading back the steps that had finished."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from conftest import STRATEGIES
from test_operate import SLOW, Stack, free_port

pytestmark = pytest.mark.slow

# Settings the test session gives every process; on a fleet they come from the shared folder instead.
PER_SESSION = (
    "STRATLAB_LEDGER",
    "STRATLAB_STEP_RESULTS_DIR",
    "STRATLAB_STRATEGIES_DIR",
    "STRATLAB_REPORTS_DIR",
    "STRATLAB_EXPORTS_DIR",
    "PREFECT_API_URL",
)


class Machine(Stack):
    """One worker's machine: its own home folders, the fleet's shared settings."""

    def __init__(self, home: Path, shared: dict[str, str]):
        super().__init__(home)
        for name in PER_SESSION:
            self.env.pop(name, None)
        self.env.update(shared)
        self.env.update(HOME=str(home), PREFECT_HOME=str(home / "prefect"))
        self.strategies = Path(shared["STRATLAB_SHARED_DIR"]) / "strategies"

    def worker_pid(self) -> int | None:
        return json.loads((self.home / "stack.json").read_text())["worker_pid"]


@pytest.fixture(scope="module")
def fleet(postgres, tmp_path_factory):
    from sqlalchemy import create_engine, text

    shared_dir = tmp_path_factory.mktemp("shared")
    (shared_dir / "strategies").mkdir()
    ledger_url = postgres.create_database("ledger")
    shared = {
        "STRATLAB_SHARED_DIR": str(shared_dir),
        "STRATLAB_LEDGER_URL": ledger_url,
        "STRATLAB_RESULTS_KEY": secrets.token_hex(32),
    }
    a = Machine(tmp_path_factory.mktemp("machine-a"), shared)
    b = Machine(tmp_path_factory.mktemp("machine-b"), shared)
    database = postgres.create_database("prefect").replace("stratlab@", "stratlab:unused-password@")
    up = a.cli("up", "--port", str(free_port()), "--database", database, "--json", timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr[-3000:]
    stack = json.loads(up.stdout)
    assert "unused-password" not in (a.home / "stack.json").read_text() and stack["database"].endswith(
        f"@127.0.0.1:{postgres.port}/prefect"
    )
    a.api = b.api = b.env["PREFECT_API_URL"] = stack["api_url"]
    joined = b.cli("up", "--json", timeout=300)  # the second machine joins: a worker and its exporter
    assert joined.returncode == 0, joined.stdout + joined.stderr[-3000:]
    assert json.loads(joined.stdout)["server_pid"] is None
    with create_engine(postgres.url("prefect", driver="postgresql+psycopg")).connect() as db:
        assert db.execute(text("SELECT count(*) FROM deployment")).scalar_one() >= 4  # Prefect's, on PG
    yield a, b, ledger_url
    for machine in (b, a):
        machine.cli("down", "--json")


def test_two_workers_on_one_pool_never_run_two_cycles_at_once(fleet):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.stack import POOL

    a, b, _ = fleet
    with a.client() as c:
        workers = [w for w in c.read_workers_for_work_pool(POOL) if w.status.value == "ONLINE"]
    assert len(workers) == 2, workers  # both machines poll the same pool

    params = {"params": {"strategy_file": str(STRATEGIES / "ema_cross_atr.yaml")}}
    with temporary_settings(updates={PREFECT_API_URL: a.api}):
        runs = [
            run_deployment("research_cycle/research-cycle", parameters=params, timeout=0, as_subflow=False)
            for _ in range(2)
        ]
    refused = b.json("trigger")  # and a trigger from the other machine while one runs
    assert refused["triggered"] is False and refused["reason"] == "cycle_in_progress", refused
    final = [a.wait_final(str(r.id)) for r in runs]
    assert sorted(r.state.name for r in final) == ["Cancelled", "Completed"]
    assert next(r for r in final if r.state.name == "Cancelled").state.message == (
        "Deployment concurrency limit reached."
    )
    assert next(r for r in final if r.state.name == "Completed").state.message == (
        "ema_cross_atr: promote_candidate"
    )


RACER = """
import sys
from tasks.llm.budget import BudgetExhausted, BudgetLedger
ledger = BudgetLedger(limit_usd=5.0)
won = 0
for _ in range(3):
    try:
        ledger.reserve(0.6, "race")
        won += 1
    except BudgetExhausted:
        pass
print(won)
"""


def test_eight_processes_on_two_machines_never_overspend_the_shared_ledger(fleet):
    from tasks.llm.budget import BudgetLedger
    from tasks.llm.pricing import TokenUsage

    a, b, ledger_url = fleet
    ledger = BudgetLedger(url=ledger_url, limit_usd=5.0)
    before = ledger.status()
    assert before.spent_usd == 0, before  # the cycles above ran with the offline designer: no spend
    ledger.settle(ledger.reserve(2.0, "earlier"), 2.0, TokenUsage())  # $3 left: five of 24 tries fit
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER], env=m.env, stdout=subprocess.PIPE, text=True, cwd=a.home
        )
        for m in (a, b) * 4
    ]
    won = [int(p.communicate(timeout=120)[0]) for p in racers]
    assert sum(won) == 5, won
    status = ledger.status()
    assert status.spent_usd + status.reserved_usd == pytest.approx(5.0) and status.remaining_usd == 0


def _runner(machines: tuple[Machine, Machine], run_id: str) -> Machine:
    """The machine whose worker started the run (the flow's process is a child of that worker)."""
    import psutil

    with machines[0].client() as c:
        pid = c.read_flow_run(UUID(run_id)).infrastructure_pid
    parent = psutil.Process(int(str(pid).rsplit(":", 1)[-1])).parent()
    return next(m for m in machines if m.worker_pid() == parent.pid)


def _step_states(machine: Machine, run_id: str) -> dict[str, str | None]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with machine.client() as c:
        runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)])))
    return {t.name.rsplit("-", 1)[0]: t.state.name if t.state else None for t in runs}


def test_a_cycle_killed_on_one_worker_is_rerun_on_the_other_and_reuses_finished_steps(fleet):
    import psutil

    a, b, _ = fleet
    contract = a.strategies.parent / "slow_training_mlp.yaml"  # in the shared folder: both workers see it
    contract.write_text(yaml.safe_dump(SLOW))
    first = a.json("trigger", "--strategy", str(contract))
    assert first["triggered"], first
    a.wait_phase("training")
    victim = _runner((a, b), first["run_id"])
    survivor = b if victim is a else a

    worker = psutil.Process(victim.worker_pid())
    for proc in [*worker.children(recursive=True), worker]:  # the machine's worker and the cycle it runs
        proc.kill()
    crashed = survivor.wait_final(first["run_id"], timeout=300, settled_as="Crashed")
    assert "heartbeat" in crashed.state.message
    assert not list(a.strategies.glob("slow_training_mlp*"))  # nothing half-written where users look

    again = survivor.json("trigger", "--strategy", str(contract))
    assert again["triggered"], again
    deadline = time.monotonic() + 180
    while (steps := _step_states(survivor, again["run_id"])).get("train") != "Running":
        assert time.monotonic() < deadline, steps
        time.sleep(0.5)
    assert _runner((a, b), again["run_id"]) is survivor
    # finished on the killed machine, read back from the shared folder on the other
    assert steps["features"] == "Cached", steps
    survivor.json("cancel")
    survivor.wait_final(again["run_id"], timeout=60, settled_as="Cancelled")
    assert os.listdir(Path(a.env["STRATLAB_SHARED_DIR"]) / "step-results")

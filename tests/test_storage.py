"""The strategies folder: each run lands by one rename and never replaces another, and a stage is removed
only when its owning process is provably gone."""

from __future__ import annotations

import json
import subprocess

import yaml
from conftest import STRATEGIES, tree

from flows.guard import clear_abandoned_stages
from strategy_contract import parse_strategy
from tasks.processes import process_identity
from tasks.storage import OWNER, STAGING, Stage, run_folders, staged_runs

PILOT_FILE = STRATEGIES / "ema_cross_atr.yaml"


def test_each_run_lands_whole_in_its_own_folder_and_the_contract_is_never_rewritten(strategies_home):
    (strategies_home / "ema_cross_atr.yaml").write_bytes(PILOT_FILE.read_bytes())
    pilot = parse_strategy(yaml.safe_load(PILOT_FILE.read_text()))
    for run_id in ("run-one", "run-two"):
        stage = Stage(run_id=run_id)
        stage.write_json("cycle.json", {"run": run_id})
        stage.commit(pilot)

    runs = run_folders("ema_cross_atr", strategies_home)
    assert [json.loads((p / "cycle.json").read_text())["run"] for p in runs] == ["run-one", "run-two"]
    assert all(sorted(f.name for f in p.iterdir()) == ["contract.yaml", "cycle.json"] for p in runs)
    assert (strategies_home / "ema_cross_atr.yaml").read_bytes() == PILOT_FILE.read_bytes()
    assert STAGING not in tree(strategies_home)


def owned_stage(run_id: str, owner: dict | None) -> None:
    stage = Stage(run_id=run_id)
    if owner is None:
        (stage.path / OWNER).unlink()
    else:
        (stage.path / OWNER).write_text(json.dumps(owner))


def test_only_stages_whose_owner_is_provably_gone_are_cleared(strategies_home):
    child = subprocess.Popen(["sleep", "60"])
    identity = process_identity(child.pid)
    child.kill()
    child.wait()
    here = json.loads((Stage(run_id="live").path / OWNER).read_text())  # this process: alive

    owned_stage("dead", {**here, "pid": child.pid, "identity": identity})
    owned_stage("reused-pid", {**here, "identity": f"{here['identity']}0"})  # our pid, another start
    owned_stage("other-host", {**here, "host": "another-machine", "pid": child.pid, "identity": identity})
    owned_stage("no-owner", None)

    removed = clear_abandoned_stages()

    assert sorted(removed) == ["dead", "reused-pid"]
    assert staged_runs() == ["live", "no-owner", "other-host"]

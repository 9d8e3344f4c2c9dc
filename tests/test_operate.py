"""Operating Strategy Lab through Prefect: a real `prefect server start` on a free 127.0.0.1 port and a
real process worker, both started by `stratlab up` and stopped by `stratlab down`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from conftest import CHROMEDRIVER, CHROMIUM, SCREENSHOTS, STRATEGIES

pytestmark = pytest.mark.slow

SLOW = {  # a contract whose training runs long enough to be cancelled in the middle
    **yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text()),
    "strategy_id": "slow_training_mlp",
    "markets": ["EURUSD"],
    "timeframes": ["1h"],
}
SLOW["model"] = {**SLOW["model"], "epochs": 300, "patience": 50, "hidden_layers": [128, 64], "batch_size": 32}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, home: Path):
        self.home = home
        self.strategies = home / "strategies"
        self.env = {
            **os.environ,
            "STRATLAB_HOME": str(home),
            "PREFECT_HOME": str(home / "prefect"),
            "STRATLAB_STRATEGIES_DIR": str(self.strategies),
            "STRATLAB_REPORTS_DIR": str(home / "reports"),
            "COLUMNS": "200",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
            "STRATLAB_METRICS_PORT": str(free_port()),  # `up` starts the exporter: never the default port
        }
        self.env.pop("PREFECT_API_URL", None)
        self.api = ""

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "stratlab", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def json(self, *args: str) -> dict:
        done = self.cli(*args, "--json")
        assert done.stdout, done.stderr[-3000:]
        return json.loads(done.stdout)

    @contextmanager
    def client(self):
        """An API client of this server, whatever other Prefect settings the test session has."""
        from prefect import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.api}), get_client(sync_client=True) as c:
            yield c

    def wait_phase(self, phase: str, timeout: float = 240) -> dict:
        """Wait until `stratlab status` shows the active cycle in `phase`; return that cycle."""
        deadline = time.monotonic() + timeout
        while (report := self.json("status"))["active"] is None or report["active"]["phase"] != phase:
            assert time.monotonic() < deadline, f"the cycle never reached {phase}: {report}"
            time.sleep(0.5)
        return report["active"]

    def wait_final(self, run_id: str, timeout: float = 240, settled_as: str | None = None) -> object:
        """Wait for a final state (or for that named state: after a cancel, Prefect 3.8's process worker
        first records Crashed from the killed process, then Cancelled)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.client() as c:
                run = c.read_flow_run(UUID(run_id))
            if run.state and run.state.is_final() and settled_as in (None, run.state.name):
                return run
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} did not end {settled_as or 'final'} in {timeout} s: {run.state}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("stack"))
    s.strategies.mkdir()
    up = s.cli("up", "--port", str(free_port()), "--json", timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr[-3000:]
    s.api = json.loads(up.stdout)["api_url"]
    yield s
    down = s.cli("down", "--json")
    stopped = json.loads(down.stdout)["stopped"]
    assert set(stopped) == {"worker", "server", "metrics"}


def test_up_deploys_one_cycle_at_a_time_with_an_inactive_schedule(stack):
    with stack.client() as c:
        deployment = c.read_deployment_by_name("research_cycle/research-cycle")
        pool = c.read_work_pool("stratlab-process")
        limit = c.read_global_concurrency_limit_by_name("research-cycle")
    assert pool.type == "process" and deployment.work_pool_name == "stratlab-process"
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    [schedule] = deployment.schedules
    assert schedule.schedule.cron == "0 */4 * * *" and schedule.active is False
    assert limit.limit == 1
    assert "params" in deployment.parameter_openapi_schema["properties"]  # the UI's run form


def test_the_sweep_deployment_runs_on_the_worker_with_a_typed_form(stack):
    from prefect.deployments import run_deployment

    with stack.client() as c:
        deployment = c.read_deployment_by_name("sweep/sweep")
        form = deployment.parameter_openapi_schema
        assert "params" in form["properties"]
        fields = form["definitions"]["SweepParams"]["properties"]
        assert fields["method"]["enum"] == ["grid", "optuna"] and "max_combos" in fields
        run = run_deployment(
            "sweep/sweep",
            parameters={
                "params": {
                    "strategy_file": str(STRATEGIES / "ema_cross_atr.yaml"),
                    "method": "optuna",
                    "max_combos": 60,
                    "batch": 30,
                }
            },
            timeout=0,
        )
    final = stack.wait_final(str(run.id), timeout=300)
    assert final.state.name == "Completed", final.state.message
    with stack.client() as c:
        artifacts = c.read_artifacts()
    assert any(a.key and a.key.endswith("-leaderboard") and a.flow_run_id == run.id for a in artifacts)


def test_the_export_deployment_runs_on_the_worker_with_a_typed_form(stack, tmp_path):
    from prefect.deployments import run_deployment

    from tasks.export.files import TARGETS

    with stack.client() as c:
        deployment = c.read_deployment_by_name("export_strategy/export-strategy")
        fields = deployment.parameter_openapi_schema["properties"]
        assert {"strategy", "target", "parity", "model_file", "out"} <= set(fields)
        assert fields["target"]["enum"] == [*TARGETS, "all"] and fields["target"]["default"] == "all"
        assert all(field.get("description") for field in fields.values())  # the UI's form explains each
        run = run_deployment(
            "export_strategy/export-strategy",
            parameters={"strategy": str(STRATEGIES / "ema_cross_atr.yaml"), "out": str(tmp_path)},
            timeout=0,
        )
    final = stack.wait_final(str(run.id), timeout=300)
    assert final.state.name == "Completed", final.state.message
    assert str(tmp_path) in final.state.message  # where the files are
    summary = json.loads((tmp_path / "export.json").read_text())
    assert all((tmp_path / summary["targets"][t]["file"]).is_file() for t in TARGETS)
    with stack.client() as c:
        artifacts = c.read_artifacts()
    assert any(a.key == "export-ema-cross-atr" and a.flow_run_id == run.id for a in artifacts)


def test_second_trigger_is_refused_and_never_runs_alongside(stack):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    params = {"params": {"strategy_file": str(STRATEGIES / "ema_cross_atr.yaml")}}
    with temporary_settings(updates={PREFECT_API_URL: stack.api}):
        first = run_deployment(
            "research_cycle/research-cycle", parameters=params, timeout=0, as_subflow=False
        )
        second = run_deployment(
            "research_cycle/research-cycle", parameters=params, timeout=0, as_subflow=False
        )
    answer = stack.json("trigger")
    assert answer["triggered"] is False and answer["reason"] == "cycle_in_progress"
    assert answer["active_run_id"] in (str(first.id), str(second.id))

    runs = [stack.wait_final(str(r.id)) for r in (first, second)]
    states = sorted(r.state.name for r in runs)
    # one ran (the pilot passes its gate on train+validation bars), one was refused
    assert states == ["Cancelled", "Completed"]
    refused = next(r for r in runs if r.state.name == "Cancelled")
    assert refused.state.message == "Deployment concurrency limit reached."
    ran = next(r for r in runs if r.state.name == "Completed")
    assert ran.state.message == "ema_cross_atr: promote_candidate"


def test_cancel_during_training_releases_the_slot_and_leaves_no_files(stack):
    contract = stack.home / "slow_training_mlp.yaml"
    contract.write_text(yaml.safe_dump(SLOW))
    started = stack.json("trigger", "--strategy", str(contract))
    assert started["triggered"], started
    active = stack.wait_phase("training")
    assert active["run_id"] == started["run_id"] and active["strategy_id"] == "slow_training_mlp"

    asked = time.monotonic()
    assert stack.json("cancel") == {"cancelled": True, "run_id": started["run_id"]}
    stack.wait_final(started["run_id"], timeout=60, settled_as="Cancelled")
    took = time.monotonic() - asked
    assert took < 30, f"cancellation took {took:.0f} s"
    assert not list(stack.strategies.glob("slow_training_mlp*"))
    assert not (stack.strategies / ".staging").exists() or not any((stack.strategies / ".staging").iterdir())
    with stack.client() as c:
        assert c.read_global_concurrency_limit_by_name("research-cycle").active_slots == 0

    again = stack.json("trigger", "--strategy", str(STRATEGIES / "ema_cross_atr.yaml"))
    assert again["triggered"], again
    assert stack.wait_final(again["run_id"]).state.name == "Completed"  # it ran to the pilot's verdict


def test_status_json_matches_the_api(stack):
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    report = stack.json("status")
    with stack.client() as c:
        runs = c.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["research_cycle"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=50,
        )
    final = [r for r in runs if r.state.is_final()][:10]
    assert [(r["run_id"], r["state"], r["message"]) for r in report["last"]] == [
        (str(r.id), r.state.name, r.state.message) for r in final
    ]
    assert report["active"] is None


def test_trigger_refuses_when_the_budget_cannot_cover_a_claude_cycle(stack, tmp_path):
    stack.env.update(
        ANTHROPIC_API_KEY="sk-ant-not-used",
        STRATLAB_DAILY_BUDGET_USD="0.05",
        STRATLAB_LEDGER=str(tmp_path / "ledger.sqlite3"),
    )
    try:
        answer = stack.json("trigger")
    finally:
        for name in ("ANTHROPIC_API_KEY", "STRATLAB_DAILY_BUDGET_USD", "STRATLAB_LEDGER"):
            stack.env.pop(name)
    assert answer["triggered"] is False and answer["reason"] == "budget_exhausted"
    assert answer["detail"].startswith("$0.0500 left today")
    assert stack.json("status")["active"] is None  # nothing was started
    offline = stack.json(
        "trigger",
        "--designer",
        "local",
        "--assessor",
        "local",
        "--strategy",
        str(STRATEGIES / "ema_cross_atr.yaml"),
    )
    assert offline["triggered"], offline  # offline cycles are not budgeted
    stack.wait_final(offline["run_id"])


def test_activated_schedules_create_runs(stack):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.schedules import IntervalSchedule

    with stack.client() as c:
        deployment = c.read_deployment_by_name("research_cycle/research-cycle")
        [cron] = deployment.schedules
        c.update_deployment_schedule(deployment.id, cron.id, active=True)  # what the UI's toggle does
        soon = datetime.now(UTC) + timedelta(hours=1)  # short interval, first run in an hour: none runs now
        c.create_deployment_schedules(
            deployment.id, [(IntervalSchedule(interval=timedelta(minutes=1), anchor_date=soon), True)]
        )
    try:
        deadline = time.monotonic() + 60
        while True:  # the scheduler may add the cron's runs before the interval's, or the other way round
            with stack.client() as c:
                scheduled = c.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
                )
            starts = sorted(r.expected_start_time for r in scheduled if r.state.name == "Scheduled")
            on_cron = any(t.minute == 0 and t.second == 0 and t.hour % 4 == 0 for t in starts)
            gaps = {
                round((b - a).total_seconds())
                for a, b in zip(starts, starts[1:], strict=False)
                if b - a <= timedelta(minutes=1)
            }
            if (on_cron and 60 in gaps) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert len(starts) >= 3, "the scheduler created no runs"
        assert on_cron, starts  # the cron schedule
        assert 60 in gaps, starts  # the one-minute interval
    finally:
        with stack.client() as c:
            for s in c.read_deployment_schedules(deployment.id):
                if s.schedule == cron.schedule:
                    c.update_deployment_schedule(deployment.id, s.id, active=False)
                else:
                    c.delete_deployment_schedule(deployment.id, s.id)
        time.sleep(3)  # a scheduler loop that read the schedules before the change may still add runs
        with stack.client() as c:  # none may start later and take the research slot from a test
            for run in c.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            ):
                if run.state.name == "Scheduled":
                    c.delete_flow_run(run.id)


def start_campaign(stack: Stack, trials: int, iterations: int, seed: int = 42) -> tuple[dict, Path]:
    """Start a campaign on the worker. Steps are keyed by content: a campaign with the same request as an
    earlier test's reads that one's finished steps back instead of computing them, so a test that must
    catch a step running gives a seed of its own."""
    started = stack.json(
        "campaign",
        "start",
        "--prompt",
        "Trend following with an EMA crossover",
        "--market",
        "EURUSD:1h",
        "--trials",
        str(trials),
        "--max-iterations",
        str(iterations),
        "--seed",
        str(seed),
    )
    assert started["started"], started
    return started, stack.home / "reports/campaigns" / started["campaign_id"]


def wait_for(check, what: str, timeout: float = 300, seen=None):
    """Poll ``check`` until it is true; on a timeout, ``seen()`` says what was there instead."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s" + (
            f"; saw {seen()}" if seen else ""
        )
        time.sleep(0.5)
    return found


def iteration_two_computing(stack: Stack, folder: Path, run_id: str) -> None:
    """Wait until iteration 2's market step runs (iteration 1 finished on disk)."""
    wait_for(
        lambda: iteration_started(folder, 2) and market_task_running(stack, run_id),
        "iteration 2 computing",
        400,
        seen=lambda: {
            "campaign": campaign_state(folder),
            "iterations started": [
                t["iteration"] for t in campaign_transitions(folder) if t["reason"] == "iteration_started"
            ],
            "market steps": market_task_states(stack, run_id),
        },
    )


def campaign_record(folder: Path) -> dict:
    """The campaign's record, campaign.json (written atomically); empty before it exists."""
    path = folder / "campaign.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def campaign_transitions(folder: Path) -> list[dict]:
    return campaign_record(folder).get("transitions", [])


def iteration_started(folder: Path, n: int) -> bool:
    return any(
        t["reason"] == "iteration_started" and t["iteration"] == n for t in campaign_transitions(folder)
    )


def market_task_states(stack: Stack, run_id: str) -> list[str]:
    """The states of the run's `campaign-market` tasks (an iteration's computation, one per market)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with stack.client() as c:
        tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)])))
    return [t.state.name for t in tasks if t.name.startswith("campaign-market") and t.state]


def market_task_running(stack: Stack, run_id: str) -> bool:
    return "Running" in market_task_states(stack, run_id)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def campaign_state(folder: Path) -> str | None:
    """The state in campaign.json, None before it exists."""
    return campaign_record(folder).get("state")


def flow_processes(stack: Stack) -> list:
    import psutil

    worker = psutil.Process(json.loads((stack.home / "stack.json").read_text())["worker_pid"])
    return [p for p in worker.children(recursive=True) if "flow" in " ".join(p.cmdline())]


def assert_continued(record: dict, before: dict[str, bytes], folder: Path) -> None:
    """The campaign completed, and the iterations finished before the interruption were read back."""
    assert record["state"] == "completed" and record["verdict"], record["state"]
    assert {k: v for k, v in files_of(folder).items() if k in before and k.startswith("iterations/")} == {
        k: v for k, v in before.items() if k.startswith("iterations/")
    }
    finished = {k for k in before if k.startswith("iterations/iter_") and k.endswith(".json")}
    started = [t["iteration"] for t in record["transitions"] if t["reason"] == "iteration_started"]
    assert all(started.count(n) == 1 for n in range(1, len(finished) + 1)), started


def test_a_campaign_is_suspended_by_pause_holds_no_process_and_resumes_where_it_stopped(stack):
    with stack.client() as c:
        form = c.read_deployment_by_name("campaign/campaign").parameter_openapi_schema
    fields = form["definitions"]["CampaignRequest"]["properties"]
    assert {"prompt", "markets", "folds", "holdout_fraction", "weights", "stop"} <= set(fields)
    started, folder = start_campaign(stack, trials=600, iterations=3)
    # Suspend while iteration 2 computes: the suspension takes effect when its task returns, so
    # iteration 1 is finished on disk and iteration 2 is redone after the resume.
    iteration_two_computing(stack, folder, started["run_id"])
    paused = stack.json("campaign", "pause", started["campaign_id"])
    assert paused["paused"], (paused, stack.json("campaign", "status", started["campaign_id"]))
    wait_for(
        lambda: stack.json("campaign", "status", started["campaign_id"])["run"]["state"] == "Suspended",
        "suspended",
        180,
    )
    # the flow's process stops when iteration 2's task returns, records where it stopped, and ends
    wait_for(lambda: campaign_state(folder) == "paused", "the campaign records its pause", 240)
    time.sleep(5)  # the worker reaps the flow's process
    assert not flow_processes(stack)
    record = campaign_record(folder)
    assert record["state"] == "paused" and record["transitions"][-1]["reason"] == "suspended"
    assert len(record["iterations"]) == 1  # iteration 1 finished; iteration 2 stopped at its task's end
    before = files_of(folder)
    # a suspended run sends no heartbeat: the missed ones must not mark it Crashed
    from deployments.stack import MISSED_HEARTBEATS

    time.sleep(MISSED_HEARTBEATS * 30 + 15)
    assert stack.json("campaign", "status", started["campaign_id"])["run"]["state"] == "Suspended"

    assert stack.json("campaign", "resume", started["campaign_id"])["resumed"]
    run = stack.wait_final(started["run_id"], timeout=400)
    assert run.state.name == "Completed", run.state
    record = campaign_record(folder)
    assert len(record["iterations"]) >= 2
    assert_continued(record, before, folder)
    assert [t["reason"] for t in record["transitions"]].count("suspended") == 1
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with stack.client() as c:
        artifacts = c.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(started["run_id"])])
            )
        )
    kinds = {a.type for a in artifacts}
    assert {"progress", "table", "markdown"} <= kinds, kinds  # progress, leaderboard, trajectory chart
    assert max(a.data for a in artifacts if a.type == "progress") == 100.0


def test_a_campaign_cancelled_mid_iteration_ends_cancelled_with_no_half_written_report(stack):
    started, folder = start_campaign(stack, trials=5000, iterations=2)  # a long first iteration
    wait_for(lambda: iteration_started(folder, 1), "iteration 1 started")
    time.sleep(3)
    assert stack.json("campaign", "cancel", started["campaign_id"])["cancelled"]
    run = stack.wait_final(started["run_id"], timeout=120, settled_as="Cancelled")
    assert run.state.name == "Cancelled"
    names = set(files_of(folder))
    assert not [n for n in names if n.startswith("iterations/") or n.endswith(".tmp")], names
    assert not names & {"report.md", "leaderboard.csv", "trajectory.png", "holdout.json", "holdout.opened"}
    record = campaign_record(folder)
    assert record["iterations"] == [] and record["verdict"] is None
    assert record["state"] in ("paused", "campaign_running"), record["state"]  # SIGTERM may beat the note
    time.sleep(3)
    assert not flow_processes(stack)


def test_kill_9_of_the_worker_mid_iteration_then_resume_continues_with_the_next_iteration(stack):
    import psutil

    started, folder = start_campaign(stack, trials=1500, iterations=2)
    wait_for(lambda: iteration_started(folder, 2), "iteration 2 started", 400)
    before = files_of(folder)
    assert "iterations/iter_1.json" in before and "iterations/iter_2.json" not in before
    worker = psutil.Process(json.loads((stack.home / "stack.json").read_text())["worker_pid"])
    for proc in [*worker.children(recursive=True), worker]:
        proc.kill()
    stack.wait_final(started["run_id"], timeout=240, settled_as="Crashed")

    assert stack.cli("up").returncode == 0  # a new worker
    assert stack.json("campaign", "resume", started["campaign_id"])["resumed"]
    run = stack.wait_final(started["run_id"], timeout=500, settled_as="Completed")
    record = campaign_record(folder)
    assert len(record["iterations"]) == 2
    assert_continued(record, before, folder)
    started_iterations = [t["iteration"] for t in record["transitions"] if t["reason"] == "iteration_started"]
    assert started_iterations.count(2) == 2, started_iterations  # iteration 2 began again, nothing before it
    assert run.id == UUID(started["run_id"])


def test_a_suspension_that_expired_is_failed_and_resume_still_continues(stack):
    from prefect.flow_runs import suspend_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    started, folder = start_campaign(stack, trials=600, iterations=3, seed=43)  # not the pause test's steps
    # Suspend while iteration 2 computes: the suspension takes effect when its task returns, so
    # iteration 1 is finished on disk and iteration 2 is redone after the resume.
    iteration_two_computing(stack, folder, started["run_id"])
    with temporary_settings(updates={PREFECT_API_URL: stack.api}):  # as the UI's Pause does: a timeout
        suspend_flow_run(flow_run_id=UUID(started["run_id"]), timeout=5)
    failed = stack.wait_final(started["run_id"], timeout=240, settled_as="Failed")
    assert failed.state.name == "Failed"  # Prefect's own verdict on an expired suspension
    # The run can expire while iteration 2's task still computes: its process stops at the next task
    # boundary and records where it stopped.
    wait_for(lambda: campaign_state(folder) == "paused", "the campaign records its pause", 240)
    record = campaign_record(folder)
    assert record["state"] == "paused" and len(record["iterations"]) == 1, record["state"]
    before = files_of(folder)

    assert stack.json("campaign", "resume", started["campaign_id"])["resumed"]
    stack.wait_final(started["run_id"], timeout=400, settled_as="Completed")
    assert_continued(campaign_record(folder), before, folder)


def find_text(driver, text: str, selector: str = "button", timeout: float = 30):
    """The first element matching `selector` whose text is `text`, once the page shows it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def find(d):
        return next((e for e in d.find_elements(By.CSS_SELECTOR, selector) if e.text.strip() == text), False)

    return WebDriverWait(driver, timeout).until(find)


def click_text(driver, text: str, selector: str = "button", timeout: float = 30) -> None:
    find_text(driver, text, selector, timeout).click()


def new_runs(stack: Stack, before: set) -> list:
    with stack.client() as c:
        return [r for r in c.read_flow_runs() if r.id not in before]


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_prefect_ui_runs_and_cancels_a_cycle(stack, browser):
    from prefect.client.schemas.actions import DeploymentUpdate

    contract = stack.home / "slow_training_mlp.yaml"
    contract.write_text(yaml.safe_dump(SLOW))
    with stack.client() as c:
        deployment = c.read_deployment_by_name("research_cycle/research-cycle")
        before = {r.id for r in c.read_flow_runs()}
        c.update_deployment(
            deployment.id, DeploymentUpdate(parameters={"params": {"strategy_file": str(contract)}})
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ui = stack.api.removesuffix("/api")
    try:
        browser.get(f"{ui}/deployments")
        click_text(browser, "research-cycle", "a")
        click_text(browser, "Run")
        click_text(browser, "Quick run", "[role=menuitem], .p-overflow-menu-item, .p-context-menu-item, li")
        deadline = time.monotonic() + 60
        while not (new := [r for r in new_runs(stack, before) if not r.auto_scheduled]):  # the UI's run
            assert time.monotonic() < deadline, "pressing Run created no flow run"
            time.sleep(0.5)
        run_id = str(new[0].id)
        browser.get(f"{ui}/runs/flow-run/{run_id}")
        stack.wait_phase("training")
        browser.refresh()
        cancel = find_text(browser, "Cancel", timeout=60)  # present once the page has loaded
        time.sleep(2)  # let the run graph draw
        browser.save_screenshot(str(SCREENSHOTS / "ui-cycle-training.png"))
        cancel.click()
        click_text(browser, "Confirm")
        stack.wait_final(run_id, timeout=60, settled_as="Cancelled")
        browser.refresh()
        time.sleep(3)
        browser.save_screenshot(str(SCREENSHOTS / "ui-cycle-cancelled.png"))
        assert "Cancelled" in browser.page_source
    finally:
        with stack.client() as c:
            c.update_deployment(deployment.id, DeploymentUpdate(parameters={}))


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_prefect_ui_shows_a_cycle_summary_with_its_equity_picture(stack, browser):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    started = stack.json("trigger", "--strategy", str(STRATEGIES / "ema_cross_atr.yaml"))
    assert started["triggered"], started
    stack.wait_final(started["run_id"], timeout=300, settled_as="Completed")
    with stack.client() as c:
        artifacts = c.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(started["run_id"])]))
        )
    [summary] = [a for a in artifacts if a.key == "cycle-ema-cross-atr"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.get(f"{stack.api.removesuffix('/api')}/artifacts/artifact/{summary.id}")

    def picture(driver):
        images = driver.find_elements(By.CSS_SELECTOR, "img[src^='data:image/png;base64,']")
        return images[0] if images else False

    image = WebDriverWait(browser, 60).until(picture)  # the Markdown rendered, the data URI kept
    loaded = "return arguments[0].complete && arguments[0].naturalWidth"
    assert WebDriverWait(browser, 30).until(lambda d: d.execute_script(loaded, image)) == 1000
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
    time.sleep(1)
    browser.save_screenshot(str(SCREENSHOTS / "ui-cycle-summary.png"))


def test_killed_worker_leaves_a_crashed_run_and_a_rerun_reuses_finished_steps(stack):
    import psutil

    contract = stack.home / "slow_training_mlp.yaml"
    contract.write_text(yaml.safe_dump(SLOW))
    first = stack.json("trigger", "--strategy", str(contract))
    assert first["triggered"], first
    stack.wait_phase("training")

    worker = psutil.Process(json.loads((stack.home / "stack.json").read_text())["worker_pid"])
    for proc in [*worker.children(recursive=True), worker]:  # the worker and the cycle it runs
        proc.kill()
    crashed = stack.wait_final(first["run_id"], timeout=240, settled_as="Crashed")
    assert "heartbeat" in crashed.state.message
    assert not list(stack.strategies.glob("slow_training_mlp*"))  # nothing half-written where users look

    assert stack.cli("up").returncode == 0  # finds the server, starts a new worker
    again = stack.json("trigger", "--strategy", str(contract))
    assert again["triggered"], again
    deadline = time.monotonic() + 180
    while True:
        with stack.client() as c:
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

            steps = {
                t.name.rsplit("-", 1)[0]: t.state.name if t.state else None  # None: not yet recorded
                for t in c.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(again["run_id"])]))
                )
            }
        if steps.get("train") == "Running":
            break
        assert time.monotonic() < deadline, steps
        time.sleep(0.5)
    assert steps["features"] == "Cached"  # finished before the crash: read back, not redone
    assert first["run_id"] not in [p.name for p in (stack.strategies / ".staging").iterdir()]  # cleared
    stack.json("cancel")
    stack.wait_final(again["run_id"], timeout=60, settled_as="Cancelled")

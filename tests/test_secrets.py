"""The Anthropic API key goes to the Messages API and nowhere else. A whole Claude cycle and a one-iteration
Claude campaign run as `stratlab` does (a process of their own, on this session's Prefect API, traces
exported to tests/otlp_receiver.py, Claude played by tests/fake_anthropic.py) with a key no one could
mistake; then every place they could have left it is read back: every file they wrote, Prefect's logs,
artifacts, events, runs and their parameters, every span and byte sent to the receiver, and a scrape of
the metrics exporter. The key is searched whole and by its random middle, which a truncated or masked
copy would still show."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from conftest import REPO, STRATEGIES
from fake_anthropic import FakeAnthropic, tool_use
from otlp_receiver import OTLPReceiver
from test_campaign_claude import BRIEF, first_contract
from test_claude import claude_cycle_replies, files_under

MIDDLE = f"LEAKCANARY-{secrets.token_hex(12)}"
KEY = f"sk-ant-api03-{MIDDLE}-{secrets.token_hex(4)}AA"
NEEDLES = (KEY, MIDDLE)
CONTRACT = {
    **yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text()),
    "strategy_id": "canary_mlp",
}

pytestmark = pytest.mark.usefixtures("prefect_api")


def holding(text: str) -> list[str]:
    """The needles (the key, its middle) that ``text`` holds."""
    return [needle for needle in NEEDLES if needle in text]


@dataclass
class Lab:
    """What the two runs left behind, and where to look for it."""

    folder: Path  # every folder of the runs' own: shared results, homes, ledger, result storage, temp
    env: dict[str, str]
    started: datetime
    cycle: dict = field(default_factory=dict)  # `stratlab cycle --json`
    campaign: dict = field(default_factory=dict)  # `stratlab campaign run --json`
    receiver: OTLPReceiver | None = None
    requests: int = 0  # requests the Messages API server received
    keys: list[str] = field(default_factory=list)  # the key each of them carried


def stratlab(lab: Lab, name: str, *args: str) -> dict:
    """`stratlab <args> --json` in a process of its own; its output is kept as a log file of the lab."""
    done = subprocess.run(
        [sys.executable, "-m", "stratlab", *args, "--json"],
        cwd=REPO,
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    logs = lab.folder / "logs"
    logs.mkdir(exist_ok=True)
    (logs / f"{name}.stdout").write_text(done.stdout)
    (logs / f"{name}.stderr").write_text(done.stderr)
    assert done.returncode == 0, f"{name}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    from prefect.settings import PREFECT_API_URL

    folder = tmp_path_factory.mktemp("secrets")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "STRATLAB_"))}
    env.update(
        PREFECT_API_URL=PREFECT_API_URL.value(),  # this session's server: its database is read below
        PREFECT_HOME=str(folder / "prefect-home"),
        PREFECT_LOCAL_STORAGE_PATH=str(folder / "prefect-results"),
        STRATLAB_SHARED_DIR=str(folder / "shared"),  # strategies, reports, exports, step results
        STRATLAB_HOME=str(folder / "stratlab-home"),
        STRATLAB_LEDGER=str(folder / "ledger.sqlite3"),
        STRATLAB_DAILY_BUDGET_USD="5",
        TMPDIR=str(folder / "tmp"),
        ANTHROPIC_API_KEY=KEY,
        COLUMNS="200",
    )
    (folder / "tmp").mkdir()
    lab = Lab(folder=folder, env=env, started=datetime.now(UTC))
    with OTLPReceiver() as receiver, FakeAnthropic() as fake:
        lab.env.update(ANTHROPIC_BASE_URL=fake.url, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
        fake.queue(*claude_cycle_replies(CONTRACT))
        lab.cycle = stratlab(
            lab,
            "cycle",
            *(
                "cycle",
                "--designer",
                "claude",
                "--assessor",
                "claude",
                "--symbol",
                "SPX",
                "--timeframe",
                "1d",
            ),
        )
        fake.queue(
            tool_use("list_markets"), tool_use("save_brief", {"brief": BRIEF, "contract": first_contract()})
        )
        lab.campaign = stratlab(
            lab,
            "campaign",
            *("campaign", "run", "--prompt", "Trend following on EURUSD hourly", "--designer", "claude"),
            *("--market", "EURUSD:1h", "--max-iterations", "1", "--trials", "12", "--folds", "2"),
        )
        lab.receiver, lab.requests, lab.keys = receiver, len(fake.requests), list(fake.keys)
    yield lab


def test_the_key_went_to_the_api_and_both_runs_used_claude(lab):
    assert lab.cycle["status"] == "completed", lab.cycle
    assert lab.campaign["state"] == "completed", lab.campaign
    assert lab.requests == 7 and lab.keys == [KEY] * 7  # five for the cycle, two for the campaign's brief


def test_no_file_holds_the_key(lab):
    """Every file under the runs' folders (strategies, reports, step results, both Prefect homes and
    result storages, the ledger, the temporary folder, the processes' output), and this session's
    Prefect database with its folder (run logs, parameters, states, artifacts, events)."""
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
    )

    database = Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split(":///", 1)[1])
    scanned = files_under(
        lab.folder, database.parent, Path(PREFECT_HOME.value()), Path(PREFECT_LOCAL_STORAGE_PATH.value())
    )
    names = {p.name for p in scanned}
    where = f"{len(scanned)} files scanned under {lab.folder} and {database.parent}"
    assert database.resolve() in scanned and (lab.folder / "ledger.sqlite3").resolve() in scanned, where
    assert {"cycle.json", "assessment.json", "campaign.json", "brief.md", "cycle.stderr"} <= names, where
    leaks = []
    for path in scanned:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a temporary file of the database, gone since it was listed
            continue
        leaks += [f"{path}: {needle}" for needle in NEEDLES if needle.encode() in data]
    assert leaks == [], where


def read_all(read: Callable[..., list], page: int = 200, **filters) -> list:
    """Every item of a paged Prefect client read (read_logs, read_artifacts, read_flow_runs, ...)."""
    items, offset = [], 0
    while True:
        batch = read(limit=page, offset=offset, **filters)
        items += batch
        if len(batch) < page:
            return items
        offset += page


def our_flow_runs(client, lab: Lab) -> list:
    """The flow runs of this module's two processes: every run that started after the lab did."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    after = FlowRunFilter(start_time=FlowRunFilterStartTime(after_=lab.started))
    return read_all(client.read_flow_runs, flow_run_filter=after)


def test_no_prefect_log_line_holds_the_key(lab):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        runs = {r.id for r in our_flow_runs(client, lab)}
        logs = read_all(client.read_logs)  # the whole server's, not only ours
    assert any(log.flow_run_id in runs for log in logs), f"no log line of our {len(runs)} runs"
    leaks = [(log.name, log.message) for log in logs if holding(f"{log.name} {log.message}")]
    assert leaks == []


def test_no_artifact_holds_the_key(lab):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        runs = {r.id for r in our_flow_runs(client, lab)}
        artifacts = read_all(client.read_artifacts)
    assert any(a.flow_run_id in runs for a in artifacts), f"no artifact of our {len(runs)} runs"
    leaks = [a.key or str(a.id) for a in artifacts if holding(a.model_dump_json())]
    assert leaks == []


def test_no_run_its_parameters_or_states_hold_the_key(lab):
    """Flow runs (parameters, tags, labels, state and its message, job variables) and their task runs."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = our_flow_runs(client, lab)
        ours = FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs]))
        task_runs = read_all(client.read_task_runs, flow_run_filter=ours)
        states = [s for r in runs for s in client.read_flow_run_states(r.id)]
    names = {r.name: r.parameters for r in runs}
    assert str(lab.cycle["run_id"]) in {str(r.id) for r in runs}, names
    cycle = next(r for r in runs if str(r.id) == str(lab.cycle["run_id"]))
    assert cycle.parameters["params"]["designer"] == "claude"  # the parameters are there to be read
    assert len(task_runs) >= 6, [t.name for t in task_runs]
    leaks = [r.name for r in (*runs, *task_runs) if holding(r.model_dump_json())]
    leaks += [s.name for s in states if holding(s.model_dump_json())]
    assert leaks == []


def test_no_event_holds_the_key(lab):
    """Prefect's events (every state change of every run, with its resource labels), through its API."""
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL

    EventsWorker.drain_all(timeout=60, at_exit=False)  # this process's own, should it have any
    body = {"filter": {"occurred": {"since": lab.started.isoformat()}}, "limit": 50}
    request = urllib.request.Request(
        PREFECT_API_URL.value() + "/events/filter",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    events: list[dict] = []
    while request is not None:
        with urllib.request.urlopen(request, timeout=30) as response:
            page = json.loads(response.read())
        events += page["events"]
        request = page["next_page"] and urllib.request.Request(page["next_page"])
    assert any(e["event"].startswith("prefect.flow-run.") for e in events), len(events)
    assert [e["event"] for e in events if holding(json.dumps(e))] == []


def test_no_span_and_no_byte_sent_to_the_collector_holds_the_key(lab):
    spans = lab.receiver.spans
    calls = [s.name for s in spans if s.name.startswith("claude ")]  # ours: one span per call to Claude
    assert len(calls) == lab.requests and {"claude design", "claude assess"} <= set(calls), calls
    assert any(s.scope == "prefect" for s in spans) and lab.receiver.bodies
    for span in spans:
        shown = json.dumps(
            [span.name, span.attributes, span.events, span.status_message, span.resource], default=str
        )
        assert holding(shown) == [], span.name
    assert [i for i, body in enumerate(lab.receiver.bodies) if any(n.encode() in body for n in NEEDLES)] == []


def test_no_metric_holds_the_key(lab, monkeypatch):
    """One scrape of the exporter, on this session's Prefect API and the runs' ledger and reports."""
    from prefect.settings import PREFECT_API_URL

    from tasks.observe.exporter import exposition

    for name in ("STRATLAB_SHARED_DIR", "STRATLAB_LEDGER"):
        monkeypatch.setenv(name, lab.env[name])
    scrape = exposition(PREFECT_API_URL.value())
    lines = scrape.splitlines()
    # the scrape did read what the runs left: Prefect, and the ledger's calls (four to design)
    assert 'stratlab_source_up{source="prefect"} 1.0' in lines, scrape
    assert 'stratlab_llm_calls_total{purpose="design",status="settled"} 4.0' in lines, scrape
    settled = [
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("stratlab_llm_calls_total{") and 'status="settled"' in line
    ]
    assert sum(settled) == lab.requests, scrape
    assert [line for line in lines if holding(line)] == []

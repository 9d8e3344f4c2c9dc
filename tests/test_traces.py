"""OpenTelemetry traces, received the way a Collector or Jaeger receives them: a local OTLP/HTTP receiver
(tests/otlp_receiver.py) and `stratlab` in a process of its own, which configures its tracer provider
from the environment at start-up as a worker's flow-run process does. A cycle is one trace (flow run ->
phase task runs -> Claude calls with their tokens and dollars); a sweep's chunks are spans of its trace,
on Dask workers too; the API key is in no span and no byte sent."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from conftest import STRATEGIES
from fake_anthropic import FakeAnthropic, error
from otlp_receiver import OTLPReceiver, ReceivedSpan
from test_claude import claude_cycle_replies

SECRET = "sk-ant-trace-5d1e8c2b7a94f036-in-no-span"
NF_CONTRACT = {
    **yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text()),
    "strategy_id": "traced_mlp",
}
# what a CallRecord holds and its span repeats (seconds: the span's own duration says it)
CALL_FIELDS = (
    "stop_reason",
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "cost_usd",
    "reserved_usd",
    "attempts",
)

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def receiver():
    with OTLPReceiver() as server:
        yield server


def stratlab(command: str, *more: str, receiver: OTLPReceiver, **env: str) -> subprocess.CompletedProcess:
    """`stratlab <command> <more>` in a new process exporting to the receiver, on the tests' Prefect API
    (no ephemeral server to start), with whatever else the test sets in its environment."""
    from prefect.settings import PREFECT_API_URL

    full = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "COLUMNS": "200",
        **env,
    }
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME"):
        full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "stratlab", *command.split(), *more],
        capture_output=True,
        text=True,
        env=full,
        timeout=600,
    )


def task_name(span: ReceivedSpan) -> str:
    """A task run's task: Prefect names the run ``<task>-<3 hex>`` (load-data-fdd)."""
    return span.name.rsplit("-", 1)[0]


def one_trace(spans: list[ReceivedSpan]) -> tuple[ReceivedSpan, dict[str, ReceivedSpan]]:
    """The root of the only trace, and every span by id; every parent is a span of the trace."""
    assert spans, "no span was received"
    assert len({s.trace_id for s in spans}) == 1, sorted({(s.trace_id, s.name) for s in spans})
    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans)
    [root] = [s for s in spans if not s.parent_id]
    assert all(s.parent_id in by_id for s in spans if s is not root), [s.name for s in spans]
    assert (root.scope, root.attributes["prefect.run.type"]) == ("prefect", "flow")
    return root, by_id


def children(parent: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return sorted((s for s in spans if s.parent_id == parent.span_id), key=lambda s: s.start_ns)


def drawing(spans: list[ReceivedSpan]) -> str:
    """The span tree, indented, for a failing assertion's message (and the README's example)."""
    lines = []

    def draw(span: ReceivedSpan, depth: int) -> None:
        lines.append(f"{'    ' * depth}{span.name}  [{span.scope}]")
        for child in children(span, spans):
            draw(child, depth + 1)

    for root in sorted((s for s in spans if not s.parent_id), key=lambda s: s.start_ns):
        draw(root, 0)
    return "\n".join(lines)


def secret_nowhere(receiver: OTLPReceiver, secret: str) -> None:
    """Not in a span's name, attributes, events, status or resource, nor in any byte received."""
    for span in receiver.spans:
        shown = json.dumps([span.name, span.attributes, span.events, span.status_message, span.resource])
        assert secret not in shown, span.name
    assert receiver.bodies and not any(secret.encode() in body for body in receiver.bodies)


def test_a_claude_cycle_is_one_trace_of_its_tasks_and_calls(receiver, tmp_path):
    home = tmp_path / "strategies"
    home.mkdir()
    with FakeAnthropic() as fake:
        fake.queue(
            error(529, "overloaded_error", "Overloaded", retry_after_ms="20"),  # the first call is retried
            *claude_cycle_replies(NF_CONTRACT),
        )
        done = stratlab(
            "cycle --designer claude --assessor claude --symbol SPX --timeframe 1d --json",
            receiver=receiver,
            ANTHROPIC_BASE_URL=fake.url,
            ANTHROPIC_API_KEY=SECRET,
            STRATLAB_STRATEGIES_DIR=str(home),
            STRATLAB_LEDGER=str(tmp_path / "ledger.sqlite3"),
            STRATLAB_DAILY_BUDGET_USD="5",
        )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["status"] == "completed" and fake.keys == [SECRET] * 6

    spans = receiver.spans
    root, by_id = one_trace(spans)
    assert root.attributes["prefect.run.id"] == result["run_id"] and root.status == "OK"
    assert root.resource["service.name"] == "strategy-lab"
    # flow run -> its phase task runs, in order, each a child of the flow run's span
    tasks = children(root, spans)
    assert [task_name(t) for t in tasks] == [
        "design-claude",
        "load-data",
        "features",
        "train",
        "backtest",
        "assess-claude",
    ]
    assert all(t.scope == "prefect" and t.attributes["prefect.run.type"] == "task" for t in tasks)
    assert all(t.status == "OK" for t in tasks)
    # task runs -> Claude calls (ours): four for the design, one for the assessment
    ours = sorted((s for s in spans if s.scope == "strategy-lab"), key=lambda s: s.start_ns)
    design, assess = tasks[0], tasks[-1]
    assert [s.name for s in children(design, spans)] == ["claude design"] * 4, drawing(spans)
    assert [s.name for s in children(assess, spans)] == ["claude assess"], drawing(spans)
    # calls -> the SDK's span of each HTTP request: two for the first call (the 529, then the answer)
    sdk = [s for s in spans if s.scope == "com.anthropic.sdk.python"]
    assert [len(children(s, spans)) for s in ours] == [2, 1, 1, 1, 1], drawing(spans)
    assert [s.attributes["http.response.status_code"] for s in sdk] == [529, *[200] * 5]
    assert len(spans) == 1 + len(tasks) + len(ours) + len(sdk), drawing(spans)

    # each call's span says what the cycle recorded for it (cycle.json, and so the ledger's numbers)
    recorded = json.loads(Path(result["artifacts"]["cycle"]).read_text())["llm"]["calls"]
    calls = ours
    assert len(recorded) == len(calls) == 5
    for span, call in zip(calls, recorded, strict=True):
        assert span.attributes["stratlab.llm.purpose"] == call["purpose"]
        assert span.attributes["stratlab.llm.model"] == call["model"]
        assert {f: span.attributes[f"stratlab.llm.{f}"] for f in CALL_FIELDS} == {
            f: call[f] for f in CALL_FIELDS
        }
        assert span.attributes["stratlab.llm.request_chars"] > 0 and span.status == "UNSET"
        [answer] = [s for s in children(span, spans) if s.status == "OK"]  # the SDK counts the same
        assert answer.attributes["gen_ai.usage.output_tokens"] == call["output_tokens"]
    assert sum(s.attributes["stratlab.llm.cost_usd"] for s in calls) == pytest.approx(
        result["llm"]["cycle"]["cost_usd"], abs=1e-5
    )
    assert calls[1].attributes["stratlab.llm.cache_read_tokens"] > 0  # the fake server's prompt cache
    # the 529 was retried inside the first call: one span, two attempts, the retry as an event
    assert calls[0].attributes["stratlab.llm.attempts"] == 2
    assert calls[0].events == [
        ("retry", {"attempt": 1, "reason": "529 overloaded", "delay_s": 0.02, "charged_usd": 0.0})
    ]
    # no prompt text either, only its size: neither the system prompt nor the contract sent back
    for text in (fake.requests[0]["system"][0]["text"][:100], NF_CONTRACT["thesis"][:100]):
        assert not any(text.encode() in body for body in receiver.bodies), text
    secret_nowhere(receiver, SECRET)


def test_a_rejected_call_fails_its_span_with_the_reason(receiver, tmp_path):
    home = tmp_path / "strategies"
    home.mkdir()
    with FakeAnthropic() as fake:
        fake.queue(error(400, "invalid_request_error", "max_tokens: too large"))
        done = stratlab(
            "cycle --designer claude --assessor local --symbol SPX --json",
            receiver=receiver,
            ANTHROPIC_BASE_URL=fake.url,
            ANTHROPIC_API_KEY=SECRET,
            STRATLAB_STRATEGIES_DIR=str(home),
            STRATLAB_LEDGER=str(tmp_path / "ledger.sqlite3"),
        )
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["failed_phase"] == "designing", done.stderr[-3000:]

    spans = receiver.spans
    root, _ = one_trace(spans)
    [design] = children(root, spans)
    [call] = children(design, spans)
    assert (task_name(design), design.status) == ("design-claude", "ERROR")
    assert call.name == "claude design" and call.status == "ERROR"
    assert (
        call.status_message
        == result["reason"]
        == ("design: Anthropic API rejected the request (400): max_tokens: too large")
    )
    assert call.attributes["error.type"] == "LLMFailure"
    assert call.attributes["http.response.status_code"] == 400
    assert call.attributes["stratlab.llm.attempts"] == 1
    assert "stratlab.llm.cost_usd" not in call.attributes  # no answer, nothing settled
    secret_nowhere(receiver, SECRET)


def small_sweep_contract(folder: Path) -> str:
    """The shipped EMA contract with three small axes: 24 combinations, five chunks of at most 5."""
    data = yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text())
    space = {
        "ema_fast.window": {"min": 8, "max": 20, "step": 4, "value": 12},
        "ema_slow.window": {"min": 40, "max": 80, "step": 20, "value": 60},
        "risk_model.stop_loss.multiple": {"min": 1.5, "max": 2.5, "step": 1.0, "value": 1.5},
    }
    for key, opt in data["optimization_space"].items():
        opt.update(space.get(key, {"enabled": False}))
    contract = folder / "ema_cross_atr.yaml"
    contract.write_text(yaml.safe_dump(data))
    return str(contract)


def test_a_sweep_on_dask_workers_is_one_trace_with_a_span_per_chunk(receiver, tmp_path):
    contract = small_sweep_contract(tmp_path)
    done = stratlab(
        "sweep --chunk 5 --dask local:2 --json --strategy",
        contract,
        receiver=receiver,
        STRATLAB_REPORTS_DIR=str(tmp_path / "reports"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert (result["evaluated"], result["chunks"]) == (24, 5)

    spans = receiver.spans
    root, _ = one_trace(spans)  # the chunks ran in other processes, and joined the flow run's trace
    tasks = children(root, spans)
    chunks = [t for t in tasks if task_name(t) == "sweep-chunk"]
    assert [task_name(t) for t in tasks if t not in chunks] == ["load-data"]
    assert len(chunks) == 5 and all(c.status == "OK" for c in chunks)
    assert sorted(c.attributes["stratlab.chunk.combinations"] for c in chunks) == [4, 5, 5, 5, 5]
    assert {c.attributes["stratlab.chunk.bars"] for c in chunks} == {result["bars"]}
    # exported by the workers themselves: a process other than the flow's
    assert {c.resource["service.instance.id"] for c in chunks} - {root.resource["service.instance.id"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_deployment_run_by_the_worker_is_one_trace(receiver, tmp_path):
    """`stratlab up` with the endpoint in its environment: the worker's flow-run process configures the
    provider as it loads the sweep deployment's flow, and sends its spans before it exits."""
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path / "stack"
    env = {
        **os.environ,
        "STRATLAB_HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "STRATLAB_STRATEGIES_DIR": str(home / "strategies"),
        "STRATLAB_REPORTS_DIR": str(home / "reports"),
        "STRATLAB_METRICS_PORT": str(free_port()),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
    }
    env.pop("PREFECT_API_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "stratlab", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    up = cli("up", "--port", str(free_port()), "--json")
    assert up.returncode == 0, up.stdout + up.stderr[-3000:]
    try:
        params = {"strategy_file": small_sweep_contract(tmp_path), "chunk": 5}
        with temporary_settings(updates={PREFECT_API_URL: json.loads(up.stdout)["api_url"]}):
            run = run_deployment("sweep/sweep", parameters={"params": params}, timeout=300)
            with get_client(sync_client=True) as client:
                run = client.read_flow_run(run.id)
        assert run.state.name == "Completed", run.state.message
        deadline = time.monotonic() + 60  # the flow's process sends its spans as it exits
        while time.monotonic() < deadline and not any(not s.parent_id for s in receiver.spans):
            time.sleep(0.5)
    finally:
        cli("down", "--json")

    spans = receiver.spans
    root, _ = one_trace(spans)
    assert root.attributes["prefect.run.id"] == str(run.id), drawing(spans)
    tasks = [task_name(t) for t in children(root, spans)]
    assert tasks == ["load-data", *["sweep-chunk"] * 5], drawing(spans)


PROBE = textwrap.dedent(
    """
    import json, sys
    from opentelemetry import trace
    from prefect.flows import load_flow_from_entrypoint

    for entrypoint in sys.argv[1:]:  # as a worker's flow-run process loads its deployment's flow
        load_flow_from_entrypoint(entrypoint)
    from tasks.observe.traces import configure_tracing

    provider = trace.get_tracer_provider()
    print(json.dumps({
        "provider": type(provider).__name__,
        "service": getattr(provider, "resource", None) and provider.resource.attributes["service.name"],
        "sdk": sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))),
        "again": configure_tracing(),
        "same": trace.get_tracer_provider() is provider,
    }))
    """
)
REPO = Path(__file__).resolve().parents[1]
ENTRYPOINTS = [d["entrypoint"] for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]]


def probe(entrypoints: list[str], **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *entrypoints],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("entrypoint", ENTRYPOINTS)
def test_loading_each_deployments_flow_configures_tracing_once(entrypoint):
    """The flow of each deployment, loaded from its entrypoint the worker's way, gives its process the
    provider when an endpoint is set, once, and ``OTEL_SERVICE_NAME`` names the service."""
    found = probe([entrypoint], OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_SERVICE_NAME="lab-7")
    assert (found["provider"], found["service"]) == ("StrategyLabProvider", "lab-7")
    assert found["again"] is True and found["same"] is True
    assert "opentelemetry.exporter.otlp.proto.http.trace_exporter" in found["sdk"]


def test_without_an_endpoint_nothing_is_configured_or_imported():
    found = probe(ENTRYPOINTS)
    assert (found["provider"], found["again"], found["sdk"]) == ("ProxyTracerProvider", False, [])

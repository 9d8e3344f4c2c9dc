"""`stratlab up` / `stratlab down`: a local Prefect server, the work pool, the concurrency limit, the
deployments of prefect.yaml, a process worker, the metrics exporter and, when asked, a Prometheus server
scraping it: started (or found) and stopped by process id.

What `up` started is written to ``$STRATLAB_HOME/stack.json`` (default ``~/.stratlab``), so `down` stops
exactly that and nothing else, and the other commands find the server without being told. Each pid is
recorded with the identity of its process (boot and start time): after a reboot, or long enough, the pid
may belong to another process, and `down` never signals that one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

from pydantic import BaseModel

from strategy_contract import atomic_write_text
from tasks.places import home
from tasks.processes import alive, process_identity, same_process

REPO = Path(__file__).resolve().parents[1]
POOL = "stratlab-process"
DEPLOYMENT = "research_cycle/research-cycle"
SWEEP_DEPLOYMENT = "sweep/sweep"
CAMPAIGN_DEPLOYMENT = "campaign/campaign"
EXPORT_DEPLOYMENT = "export_strategy/export-strategy"


class Stack(BaseModel):
    api_url: str
    server_pid: int | None = None  # None: the server was already running, not ours to stop
    worker_pid: int | None = None
    # tasks.processes.process_identity of each pid when `up` recorded it; None in a stack.json written
    # before identities were recorded: such a pid is never signalled
    server_identity: str | None = None
    worker_identity: str | None = None
    metrics_pid: int | None = None  # the exporter: `stratlab metrics --serve PORT`
    metrics_identity: str | None = None
    metrics_url: str | None = None
    prometheus_pid: int | None = None  # Debian's prometheus, with `up --prometheus`
    prometheus_identity: str | None = None
    prometheus_url: str | None = None
    database: str = "sqlite"  # the server's database, as shown (a PostgreSQL URL without its password)
    logs: str = ""

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


class StopRefused(RuntimeError):
    """`down` was not allowed to signal a process it started (it runs as another user)."""


def state_file() -> Path:
    return home() / "stack.json"


def load_stack() -> Stack | None:
    try:
        return Stack.model_validate_json(state_file().read_text())
    except (OSError, ValueError):
        return None


def api_url() -> str | None:
    """The Prefect API to talk to: $PREFECT_API_URL, else the one `stratlab up` started."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    stack = load_stack()
    return stack.api_url if stack else None


def healthy(api: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _prefect() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> int:
    """Start a long-running process in its own session (it outlives this command) and return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid


def heartbeat_seconds() -> int:
    """How often a running cycle tells the server it is alive (Prefect's minimum is 30 s)."""
    return max(int(os.environ.get("STRATLAB_HEARTBEAT_SECONDS", "30")), 30)


def _env(api: str) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(heartbeat_seconds()),
    }


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def server_database_url(database: str) -> str:
    """The SQLAlchemy URL Prefect's server is given for ``--database``: a ``postgresql://`` URL gets the
    asyncpg driver Prefect uses. Anything else is refused by name."""
    if database.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + database.split("://", 1)[1]
    if database.startswith("postgresql+asyncpg://"):
        return database
    raise ValueError(f"--database: '{_hide_password(database)}' is not a postgresql:// URL")


def _hide_password(url: str) -> str:
    """A database URL as it may be shown and written: ``user:***@host``."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"


def _adopt(name: str, pid: int | None, identity: str | None, say) -> tuple[int | None, str | None]:
    """The (pid, identity) of a process a previous `up` recorded, if that very process still runs."""
    if not alive(pid):
        return None, None
    if same_process(pid, identity):
        return pid, identity
    if identity is None:
        say(
            f"{name}: pid {pid} was recorded without a process identity (by an older `stratlab up`); "
            f"not adopted. If it is a stale Prefect {name}, stop it by hand: kill -TERM -- -{pid}"
        )
    return None, None


def up(
    port: int = 4200,
    wait_s: float = 120.0,
    say=print,
    metrics_port: int | None = None,
    prometheus_port: int | None = None,
    database: str | None = None,
    host: str = "127.0.0.1",
) -> Stack:
    """Find or start the server, set it up, deploy, and make sure a worker and the metrics exporter run
    (on ``metrics_port``, default ``$STRATLAB_METRICS_PORT`` or 9108); with ``prometheus_port``, also
    a Prometheus server scraping the exporter.

    A server this call starts binds ``host`` (127.0.0.1 unless told otherwise) and keeps its runs in
    ``database`` (a ``postgresql://`` URL: what a fleet of workers on several machines needs), else in
    Prefect's SQLite file under ``$PREFECT_HOME``. With ``$PREFECT_API_URL`` naming another machine's
    server, only a worker and the exporter start here: that is how a machine joins the fleet."""
    previous = load_stack()
    logs = home() / "logs"
    server_env: dict[str, str] = {}
    if database:
        server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = server_database_url(database)
    if host not in LOOPBACK and not os.environ.get("PREFECT_SERVER_API_AUTH_STRING"):
        say(
            f"warning: the server will listen on {host}, reachable from other machines, and no "
            "PREFECT_SERVER_API_AUTH_STRING is set: anyone who reaches it can run flows. See the README's "
            "security notes."
        )
    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    api = os.environ.get("PREFECT_API_URL") or (
        previous.api_url if previous else f"http://{local}:{port}/api"
    )
    server_pid, server_identity = (
        _adopt("server", previous.server_pid, previous.server_identity, say) if previous else (None, None)
    )
    if healthy(api):
        say(f"server: found {api}")
    else:
        if not api.startswith((f"http://{local}:", "http://127.0.0.1:", "http://localhost:")):
            raise RuntimeError(f"Prefect API {api} does not answer; start it, or unset PREFECT_API_URL")
        port = int(api.rsplit(":", 1)[1].split("/")[0])
        server_pid = _spawn(
            [_prefect(), "server", "start", "--host", host, "--port", str(port)],
            logs / "server.log",
            {**_env(api), **server_env},
        )
        server_identity = process_identity(server_pid)
        shown = _hide_password(database) if database else "SQLite under $PREFECT_HOME"
        say(
            f"server: starting on {host}:{port}, database {shown} (pid {server_pid}, log {logs / 'server.log'})"
        )
        deadline = time.monotonic() + wait_s
        while not healthy(api):
            if time.monotonic() > deadline or not alive(server_pid):
                raise RuntimeError(f"the Prefect server did not start; see {logs / 'server.log'}")
            time.sleep(1)
    stack = Stack(
        api_url=api,
        server_pid=server_pid,
        server_identity=server_identity,
        database=_hide_password(database) if database else (previous.database if previous else "sqlite"),
        logs=str(logs),
    )
    atomic_write_text(state_file(), stack.model_dump_json(indent=2))

    configure(api, say)
    worker_pid, worker_identity = (
        _adopt("worker", previous.worker_pid, previous.worker_identity, say)
        if previous and previous.api_url == api
        else (None, None)
    )
    if worker_pid is not None:
        say(f"worker: running (pid {worker_pid})")
    else:
        worker_pid = _spawn(
            [_prefect(), "worker", "start", "--pool", POOL, "--type", "process"],
            logs / "worker.log",
            _env(api),
        )
        worker_identity = process_identity(worker_pid)
        say(f"worker: started on pool {POOL} (pid {worker_pid}, log {logs / 'worker.log'})")
    stack.worker_pid, stack.worker_identity = worker_pid, worker_identity
    atomic_write_text(state_file(), stack.model_dump_json(indent=2))
    _start_metrics(stack, previous, metrics_port, say)
    atomic_write_text(state_file(), stack.model_dump_json(indent=2))
    if prometheus_port is not None:
        _start_prometheus(stack, previous, prometheus_port, say)
        atomic_write_text(state_file(), stack.model_dump_json(indent=2))
    return stack


def _answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _wait_for(url: str, pid: int, name: str, log: Path, wait_s: float = 60.0) -> None:
    deadline = time.monotonic() + wait_s
    while not _answers(url):
        if time.monotonic() > deadline or not alive(pid):
            raise RuntimeError(f"the {name} did not start; see {log}")
        time.sleep(0.5)


def _start_metrics(stack: Stack, previous: Stack | None, port: int | None, say) -> None:
    """The exporter: adopted when the previous `up` started it and it still runs, else started."""
    from tasks.observe.exporter import metrics_port

    pid, identity = (
        _adopt("metrics", previous.metrics_pid, previous.metrics_identity, say) if previous else (None, None)
    )
    if pid is not None:
        stack.metrics_pid, stack.metrics_identity, stack.metrics_url = pid, identity, previous.metrics_url
        say(f"metrics: running at {previous.metrics_url} (pid {pid})")
        return
    port = port or metrics_port()
    url = f"http://127.0.0.1:{port}/metrics"
    if _answers(url):
        raise RuntimeError(
            f"port {port} already serves {url}, not started by this `up`; choose another with "
            "--metrics-port or STRATLAB_METRICS_PORT"
        )
    log = Path(stack.logs) / "metrics.log"
    pid = _spawn(
        [sys.executable, "-m", "stratlab", "metrics", "--serve", str(port)], log, _env(stack.api_url)
    )
    stack.metrics_pid, stack.metrics_identity, stack.metrics_url = pid, process_identity(pid), url
    _wait_for(url, pid, "metrics exporter", log)
    say(f"metrics: serving {url} (pid {pid}, log {log})")


def _start_prometheus(stack: Stack, previous: Stack | None, port: int, say) -> None:
    """Debian's prometheus on 127.0.0.1:port, scraping the exporter (adopted if it still runs)."""
    from tasks.observe.exporter import prometheus_command, prometheus_config

    pid, identity = (
        _adopt("prometheus", previous.prometheus_pid, previous.prometheus_identity, say)
        if previous
        else (None, None)
    )
    if pid is not None:
        stack.prometheus_pid, stack.prometheus_identity = pid, identity
        stack.prometheus_url = previous.prometheus_url
        say(f"prometheus: running at {previous.prometheus_url} (pid {pid})")
        return
    folder = home() / "prometheus"
    target = stack.metrics_url.removeprefix("http://").removesuffix("/metrics")
    config = prometheus_config(folder, target)
    log = Path(stack.logs) / "prometheus.log"
    pid = _spawn(prometheus_command(folder, port, config), log, dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    stack.prometheus_pid, stack.prometheus_identity, stack.prometheus_url = pid, process_identity(pid), url
    _wait_for(f"{url}/-/ready", pid, "Prometheus server", log)
    say(f"prometheus: {url} scrapes {stack.metrics_url} (pid {pid}, config {config}, log {log})")


def configure(api: str, say=print) -> None:
    """Idempotent set-up of a server: the work pool, the global limit, and prefect.yaml's deployments."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.guard import CAMPAIGN_LIMIT, ensure_cycle_limit, ensure_limit

    with temporary_settings(updates={PREFECT_API_URL: api}):
        with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        ensure_cycle_limit()
        ensure_limit(CAMPAIGN_LIMIT)
        ensure_crash_detection()
    say(
        f"set-up: work pool {POOL}, global concurrency limits research-cycle and campaign (1 slot each), "
        "crash detection"
    )
    done = subprocess.run(
        [_prefect(), "--no-prompt", "deploy", "--all"],
        cwd=REPO,
        env=_env(api),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    say(
        f"deployed: {DEPLOYMENT}, {SWEEP_DEPLOYMENT}, {CAMPAIGN_DEPLOYMENT}, {EXPORT_DEPLOYMENT} (prefect.yaml)"
    )


CRASH_AUTOMATION = "stratlab: mark silent cycles Crashed"
# A run stops sending heartbeats when it ends, and also when it is suspended (a paused campaign holds no
# process for hours): neither is a crash. See deployments/suspension.py for why the state events alone
# are not enough for a suspension.
QUIET_EVENTS = ("Completed", "Failed", "Cancelled", "Crashed", "Suspended", "Paused")
# Missed heartbeats before a run counts as lost. Five, not three: a heartbeat is sent by a thread that a
# long GIL-holding computation (a numba kernel on a loaded machine) can delay past one period.
MISSED_HEARTBEATS = 5


def ensure_crash_detection() -> None:
    """A run whose process was killed (worker SIGKILLed, machine lost) sends no more heartbeats and no
    final state; this automation marks it Crashed after ``MISSED_HEARTBEATS`` missed heartbeats. Idempotent; an older
    definition (one that would crash a suspended campaign) is replaced."""
    from datetime import timedelta

    from prefect import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    from deployments.suspension import SUSPENDED_EVENT

    expect = {"prefect.flow-run.heartbeat", SUSPENDED_EVENT, *(f"prefect.flow-run.{s}" for s in QUIET_EVENTS)}
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(CRASH_AUTOMATION)
        window = timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds())
        if existing and all(set(a.trigger.expect) == expect and a.trigger.within == window for a in existing):
            return
        for automation in existing:
            client.delete_automation(automation.id)
        client.create_automation(
            AutomationCore(
                name=CRASH_AUTOMATION,
                description="A run stopped sending heartbeats without ending or being suspended: its "
                "process is gone.",
                trigger=EventTrigger(
                    match={"prefect.resource.id": "prefect.flow-run.*"},
                    after={"prefect.flow-run.heartbeat"},
                    expect=expect,
                    for_each={"prefect.resource.id"},
                    posture=Posture.Proactive,
                    threshold=1,
                    within=window,
                ),
                actions=[
                    ChangeFlowRunState(
                        state=StateType.CRASHED,
                        message="No heartbeat: the process of this run was lost",
                    )
                ],
            )
        )


def down(say=print) -> dict:
    """Stop the worker and the server that `up` started (by pid); leave anything else alone.

    A pid is signalled only while it is the very process `up` recorded (same boot, same start time):
    one that merely reuses the pid, or one recorded without an identity, is left alone, and `say` tells
    why. stack.json is removed once nothing it records can still be ours; otherwise it keeps only
    those entries. Returns {name: pid} of what was stopped; raises StopRefused (after trying both) when
    the system refused to signal one of ours."""
    stack = load_stack()
    stopped: dict[str, int] = {}
    if stack is None:
        say("nothing to stop: no stack.json")
        return stopped
    refused: list[str] = []
    for name in ("prometheus", "metrics", "worker", "server"):
        pid, identity = getattr(stack, f"{name}_pid"), getattr(stack, f"{name}_identity")
        keep = False
        if pid is None:
            pass  # a server `up` found already running: not ours to stop
        elif not alive(pid):
            say(f"{name}: pid {pid} is no longer running")
        elif identity is None:
            keep = True
            say(
                f"{name}: pid {pid} was recorded without a process identity (stack.json from an older "
                f"`stratlab up`), so whether it is still the {name} cannot be told; not signalled. "
                f"If `ps -o pid,lstart,args -p {pid}` shows the Prefect {name}, stop it by hand: "
                f"kill -TERM -- -{pid}"
            )
        elif not same_process(pid, identity):
            keep = process_identity(pid) is None  # unreadable: it may still be ours
            say(f"{name}: {_not_the_recorded(pid, identity)}; not signalled")
        else:
            try:
                gone = _stop(pid, identity)
            except PermissionError as exc:
                keep = True
                refused.append(
                    f"{name}: not permitted to signal pid {pid} ({exc.strerror}); it runs as another "
                    f"user: stop it as that user, e.g. sudo kill -TERM -- -{pid}"
                )
            else:
                if gone:
                    stopped[name] = pid
                    say(f"{name}: stopped (pid {pid})")
                else:
                    keep = True
                    say(f"{name}: pid {pid} still runs after SIGTERM and SIGKILL")
        if not keep:
            setattr(stack, f"{name}_pid", None)
            setattr(stack, f"{name}_identity", None)
    if all(getattr(stack, f"{name}_pid") is None for name in ("prometheus", "metrics", "worker", "server")):
        state_file().unlink(missing_ok=True)
    else:
        atomic_write_text(state_file(), stack.model_dump_json(indent=2))
        say(f"{state_file()} kept for what was not stopped; run `stratlab down` again once it is")
    if refused:
        raise StopRefused("; ".join(refused))
    return stopped


def _not_the_recorded(pid: int, identity: str) -> str:
    """Why the process at pid is not the one recorded with identity, in words."""
    current = process_identity(pid)
    if current is None:
        return f"pid {pid}: its process identity cannot be read, so it cannot be told from another process"
    if current.rsplit(":", 1)[0] != identity.rsplit(":", 1)[0]:
        return f"pid {pid} now belongs to another process (the machine has restarted since `up` recorded it)"
    return f"pid {pid} now belongs to another process (started after `up` recorded it)"


def _stop(pid: int, identity: str, grace_s: float = 20.0) -> bool:
    """SIGTERM the process group, then SIGKILL what is left after the grace period; each signal only
    while pid is still the recorded process. True once it is gone. PermissionError propagates."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not same_process(pid, identity):
            return True
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:  # it no longer leads a process group of its own: signal it alone
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while same_process(pid, identity) and time.monotonic() < deadline:
            time.sleep(0.2)
    return not same_process(pid, identity)

"""A Prefect server as an operator exposes it: `prefect server start` (the venv's executable, a process of
its own) on 127.0.0.1, with Prefect's basic auth switched on by ``PREFECT_SERVER_API_AUTH_STRING``
("user:password"). Every API request without that pair is refused with 401, except Prefect's probes
(``GET /api/health`` and ``GET /api/ready``); Prefect's client and a flow run in a process of its own
authenticate with ``PREFECT_API_AUTH_STRING``. The socket listens on the loopback address only."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow

PREFECT = REPO / ".venv" / "bin" / "prefect"
USER = "admin"
STARTUP_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`prefect server start --host 127.0.0.1` with basic auth, its home and SQLite database in ``folder``."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.log = folder / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env.update(
            PREFECT_HOME=str(folder / "prefect"),
            PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{folder / 'prefect.db'}",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_API_AUTH_STRING=self.auth_string,
        )
        self.process: subprocess.Popen | None = None

    @property
    def auth_string(self) -> str:
        return f"{USER}:{self.password}"

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with everything it started
            )
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({self.process.returncode}): {self.log.read_text()[-3000:]}"
                )
            try:
                if request(self.url + "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"no answer from {self.url}/health in {STARTUP_S}s: {self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def basic(user_password: str) -> str:
    return "Basic " + base64.b64encode(user_password.encode()).decode()


def request(url: str, body: dict | None = None, authorization: str | None = None) -> tuple[int, object]:
    """(status, decoded JSON body) of a GET, or of a POST when ``body`` is given; no header is added
    but ``Authorization`` when one is given (urllib sends no credentials of its own)."""
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("server-auth"))
    try:
        s.start()
        yield s
    finally:
        s.stop()
    assert s.process.poll() is not None


REFUSED = (401, {"exception_message": "Unauthorized"})


def test_requests_without_the_right_pair_are_refused(server):
    runs, flow = server.url + "/flow_runs/filter", f"{server.url}/flows/{uuid.uuid4()}"
    assert request(runs, {}) == REFUSED  # no Authorization header at all
    assert request(flow) == REFUSED
    for wrong in (
        f"{USER}:{server.password}x",  # a wrong password
        f"{USER}:",
        f"someone:{server.password}",  # the right password for another user
        server.password,
    ):
        assert request(runs, {}, basic(wrong)) == REFUSED, wrong
    for malformed in (f"Bearer {server.password}", f"Basic {server.auth_string}", "Basic", ""):
        assert request(runs, {}, malformed) == REFUSED, malformed
    # what the API would tell about itself is refused too: its version, settings and schema
    for path in ("/version", "/admin/settings", "/openapi.json", "/ui-settings"):
        assert request(server.url + path) == REFUSED, path


def test_the_right_pair_is_let_in(server):
    assert request(server.url + "/flow_runs/filter", {}, basic(server.auth_string)) == (200, [])
    status, flow = request(f"{server.url}/flows/{uuid.uuid4()}", authorization=basic(server.auth_string))
    assert status == 404  # past the gate: the API itself answers that there is no such flow


def test_probes_and_the_ui_shell_answer_without_credentials(server):
    """Prefect leaves its probes open (for load balancers, Kubernetes): they tell only that it is up. The
    UI's static files are served too, and its settings tell the browser to ask for the password."""
    assert request(server.url + "/health") == (200, True)
    assert request(server.url + "/ready") == (200, {"message": "OK"})
    # only their GET: anything else on those paths is behind the gate
    assert request(server.url + "/health", {}) == REFUSED
    status, ui = request(f"http://127.0.0.1:{server.port}/ui-settings")
    assert status == 200 and ui["auth"] == "BASIC"
    assert server.password not in json.dumps(ui)


@contextmanager
def prefect_client(url: str, auth_string: str | None):
    """Prefect's sync client for ``url``, with ``PREFECT_API_AUTH_STRING`` set to ``auth_string`` (or unset)."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    updates = {PREFECT_API_URL: url}
    if auth_string is not None:
        updates[PREFECT_API_AUTH_STRING] = auth_string
    unset = {PREFECT_API_AUTH_STRING} if auth_string is None else set()
    with temporary_settings(updates=updates, restore_defaults=unset), get_client(sync_client=True) as client:
        yield client


def test_prefects_client_authenticates_with_the_client_setting(server):
    from prefect.exceptions import PrefectHTTPStatusError

    with prefect_client(server.url, server.auth_string) as client:
        flow_id = client.create_flow_from_name("behind-basic-auth")
        assert client.read_flow(flow_id).name == "behind-basic-auth"
        assert client.read_flow_runs() == []
    with prefect_client(server.url, None) as client, pytest.raises(PrefectHTTPStatusError, match="401"):
        client.read_flows()


FLOW = textwrap.dedent(
    """
    from prefect import flow, get_run_logger

    @flow(name="authenticated")
    def authenticated(x: int) -> int:
        get_run_logger().info("ran with %s", x)
        return x * 2

    state = authenticated(21, return_state=True)
    print(state.type.value, state.result())
    """
)


def test_a_flow_run_in_its_own_process_records_its_state_and_logs(server):
    """A process with ``PREFECT_API_URL`` and ``PREFECT_API_AUTH_STRING``, as a worker's flow-run process
    has them: its run, states and logs reach the server."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    env = {
        **server.env,
        "PREFECT_API_URL": server.url,
        "PREFECT_API_AUTH_STRING": server.auth_string,
    }
    env.pop("PREFECT_SERVER_API_AUTH_STRING")  # a client needs only its own setting
    done = subprocess.run(
        [sys.executable, "-c", FLOW], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["COMPLETED", "42"]
    # neither the API ("401 Unauthorized") nor the events websocket ("HTTP 401") turned it away
    assert not any(word in done.stderr for word in ("Unauthorized", "HTTP 401")), done.stderr[-3000:]

    with prefect_client(server.url, server.auth_string) as client:
        [run] = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["authenticated"])))
        logs = client.read_logs()
    assert run.state.is_completed() and run.parameters == {"x": 21}
    assert any(log.message == "ran with 21" and log.flow_run_id == run.id for log in logs)


def listening(port: int) -> list[str]:
    """The local addresses of the sockets listening on ``port``, from /proc/net/tcp and tcp6 (Linux)."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, _remote, state = line.split()[1:4]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: TCP_LISTEN
                raw = bytes.fromhex(address)
                if width == 8:
                    found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:  # four 32-bit words, each in host (little-endian) order
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


def outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("203.0.113.1", 9))  # TEST-NET-3: only the route is looked up, nothing sent
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_the_server_listens_on_the_loopback_address_only(server):
    assert listening(server.port) == ["127.0.0.1"]
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no address besides the loopback one")
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.settimeout(5)
        s.connect((address, server.port))

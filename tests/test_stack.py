"""`stratlab down` signals only the very processes `stratlab up` recorded: never one that merely reuses a
recorded pid, never one recorded without an identity. Real child processes, no Prefect server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from deployments.stack import Stack, down, state_file
from tasks.processes import alive, process_identity

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("STRATLAB_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def sleeper():
    """A process in its own session, as `up` starts the server and the worker."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
    proc.wait(timeout=10)


def record(**fields) -> None:
    state_file().parent.mkdir(parents=True, exist_ok=True)
    state_file().write_text(Stack(api_url="http://127.0.0.1:1/api", **fields).model_dump_json())


def running(proc: subprocess.Popen) -> bool:
    return proc.poll() is None


def test_down_stops_the_process_it_recorded(home, sleeper):
    record(worker_pid=sleeper.pid, worker_identity=process_identity(sleeper.pid))
    said = []

    assert down(say=said.append) == {"worker": sleeper.pid}

    assert sleeper.wait(timeout=10) == -15  # SIGTERM, to its process group
    assert said == [f"worker: stopped (pid {sleeper.pid})"]
    assert not state_file().exists()


def test_a_recorded_process_outside_its_own_group_is_still_stopped(home):
    proc = subprocess.Popen(["sleep", "60"])  # in the test's process group: killpg(pid) finds no group
    try:
        record(worker_pid=proc.pid, worker_identity=process_identity(proc.pid))
        assert down(say=lambda _: None) == {"worker": proc.pid}
        assert proc.wait(timeout=10) == -15
    finally:
        proc.kill()
        proc.wait()


def test_a_pid_reused_by_another_process_is_left_alone(home, sleeper):
    boot, start = process_identity(sleeper.pid).rsplit(":", 1)
    # what `up` would have recorded for an earlier process with this pid, started one tick before
    record(server_pid=sleeper.pid, server_identity=f"{boot}:{int(start) - 1}")
    said = []

    assert down(say=said.append) == {}

    assert running(sleeper) and alive(sleeper.pid)
    assert said == [
        f"server: pid {sleeper.pid} now belongs to another process (started after `up` recorded it); "
        "not signalled"
    ]
    assert not state_file().exists()  # nothing it records can still be ours


def test_a_pid_from_before_a_reboot_is_left_alone(home, sleeper):
    start = process_identity(sleeper.pid).rsplit(":", 1)[1]
    record(worker_pid=sleeper.pid, worker_identity=f"00000000-0000-0000-0000-000000000000:{start}")
    said = []

    assert down(say=said.append) == {}

    assert running(sleeper)
    assert said == [
        f"worker: pid {sleeper.pid} now belongs to another process "
        "(the machine has restarted since `up` recorded it); not signalled"
    ]


def test_a_pid_recorded_without_identity_is_never_signalled_on_a_guess(home, sleeper):
    # a stack.json written before identities were recorded
    state_file().write_text(json.dumps({"api_url": "http://127.0.0.1:1/api", "worker_pid": sleeper.pid}))
    said = []

    assert down(say=said.append) == {}

    assert running(sleeper)
    [why, kept] = said
    assert why.startswith(f"worker: pid {sleeper.pid} was recorded without a process identity")
    assert "not signalled" in why and f"kill -TERM -- -{sleeper.pid}" in why
    assert kept.startswith(f"{state_file()} kept")
    assert json.loads(state_file().read_text())["worker_pid"] == sleeper.pid

    # once stopped by hand, `down` forgets it
    os.killpg(sleeper.pid, 15)
    sleeper.wait(timeout=10)
    said.clear()
    assert down(say=said.append) == {}
    assert said == [f"worker: pid {sleeper.pid} is no longer running"]
    assert not state_file().exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run `stratlab down` as another user")
def test_a_refused_signal_is_a_clear_error_not_a_traceback(sleeper):
    """`stratlab down` run as `nobody` against a process of root: the kernel refuses the signal."""
    home = Path(tempfile.mkdtemp(prefix="stratlab-down-"))
    try:
        home.chmod(0o777)
        (home / "stack.json").write_text(
            Stack(
                api_url="http://127.0.0.1:1/api",
                worker_pid=sleeper.pid,
                worker_identity=process_identity(sleeper.pid),
            ).model_dump_json()
        )
        # import everything as root (a checkout in a private folder is not readable by nobody), typer's
        # and rich's lazily imported modules included, then drop to nobody
        script = (
            "import contextlib, importlib, os, pkgutil, sys\n"
            "from stratlab.cli import app\n"
            "import deployments.stack, rich, typer\n"
            "for pkg in (typer, rich):\n"
            "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
            "        if not m.name.endswith('__main__'):\n"
            "            with contextlib.suppress(Exception):\n"
            "                importlib.import_module(m.name)\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "sys.argv = ['stratlab', 'down']\n"
            "app()\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env={**os.environ, "STRATLAB_HOME": str(home), "COLUMNS": "400"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert f"not permitted to signal pid {sleeper.pid}" in done.stderr
        assert running(sleeper)
        assert json.loads((home / "stack.json").read_text())["worker_pid"] == sleeper.pid  # kept
    finally:
        shutil.rmtree(home)


def test_up_refuses_a_database_that_is_not_postgresql_without_showing_its_password(home):
    done = subprocess.run(
        [sys.executable, "-m", "stratlab", "up", "--database", "mysql://lab:s3cret@db:3306/prefect"],
        env={**os.environ, "STRATLAB_HOME": str(home), "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "--database: 'mysql://lab:***@db:3306/prefect' is not a postgresql:// URL" in done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    assert not state_file().exists()  # refused before anything started

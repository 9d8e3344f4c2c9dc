"""The one-cycle slot on Prefect's ephemeral API (`stratlab cycle` with no server): a run killed with
SIGKILL while it holds the slot must not block every later run. No server runs Prefect's repossessor
there; a waiting process frees the expired lease itself (flows/guard.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import REPO

HOLDER = textwrap.dedent(
    """
    import sys, time
    from stratlab.common import prepare_prefect_env
    prepare_prefect_env()
    from prefect import flow
    from prefect.runtime import flow_run
    from flows.guard import one_cycle_at_a_time

    @flow(name="slot-" + sys.argv[1])
    def hold(seconds: float) -> None:
        with one_cycle_at_a_time():
            print("held", flow_run.get_id(), flush=True)
            time.sleep(seconds)

    hold(float(sys.argv[2]))
    print("done", flush=True)
    """
)


def _env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STRATLAB_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        STRATLAB_HOME=str(tmp_path / "home"),
        STRATLAB_SHARED_DIR=str(tmp_path / "shared"),
        PYTHONPATH=str(REPO),
    )
    return env


def _read_line(proc: subprocess.Popen, deadline: float) -> str:
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            return line.strip()
        if proc.poll() is not None:
            break
    raise AssertionError(f"no line from the holder (exit {proc.poll()}): {proc.stderr.read()[-2000:]}")


@pytest.mark.slow
def test_a_killed_holder_does_not_block_the_next_cycle_on_the_ephemeral_api(tmp_path):
    env = _env(tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "killed", "600"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        held = _read_line(first, time.monotonic() + 180)
        assert held.startswith("held ")
        killed_run = held.split()[1]
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the holder and the ephemeral server it started
        first.wait()

    began = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-c", HOLDER, "next", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # without the reclaim it would wait for ever
    )
    waited = time.monotonic() - began
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.split("\n")[-2] == "done"
    assert waited < 240, f"the next run waited {waited:.0f} s for a dead run's slot"

    check = textwrap.dedent(
        f"""
        from stratlab.common import prepare_prefect_env
        prepare_prefect_env()
        from prefect import get_client
        with get_client(sync_client=True) as c:
            run = c.read_flow_run("{killed_run}")
            limit = c.read_global_concurrency_limit_by_name("research-cycle")
            print(run.state.name, limit.active_slots)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    state, active = out.stdout.split()
    assert state == "Crashed"  # the dead run no longer shows as Running
    assert active == "0"  # the slot was freed once, and the second run gave its own back

"""The `stratlab` command as a user runs it: a real process, JSON out, clear errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import STRATEGIES, tree

STRATLAB = [sys.executable, "-m", "stratlab"]


def stratlab(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "STRATLAB_STRATEGIES_DIR": str(home), "COLUMNS": "200"}
    return subprocess.run([*STRATLAB, *args], capture_output=True, text=True, env=env, timeout=600)


def test_cycle_json_reports_a_gate_failure_with_exit_code_2(tmp_path):
    home = tmp_path / "strategies"
    home.mkdir()
    demanding = yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text())
    demanding["gates"] = {"backtest": {"min_sharpe": 5.0}}  # tighter than the operator's: allowed
    (home / "ema_cross_atr.yaml").write_text(yaml.safe_dump(demanding))
    done = stratlab("cycle", "--strategy", str(home / "ema_cross_atr.yaml"), "--json", home=home)

    assert done.returncode == 2, done.stderr[-2000:]
    result = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert result["status"] == "failed" and result["failed_phase"] == "backtesting"
    assert result["reason"].startswith("Backtest gate failed: Sharpe ") and result["reason"].endswith(" < 5")
    assert result["strategy_id"] == "ema_cross_atr"
    assert set(result["metrics"]["backtest"]) == {"selection_part", "selection", "held_out"}
    assert result["metrics"]["backtest"]["selection_part"] == "train+validation"  # rules fit nothing
    run_folder = home / "ema_cross_atr" / f"{result['started_at'][:19].replace('-', '').replace(':', '')}Z-"
    assert result["artifacts"]["backtest"] == f"{result['artifacts']['results']}/backtest.json"
    assert result["artifacts"]["results"].startswith(str(run_folder))
    assert result["duration_s"] > 0
    assert [p for p in tree(home) if not p.startswith("ema_cross_atr/")] == [
        "ema_cross_atr",
        "ema_cross_atr.yaml",
    ]
    assert sorted(p.name for p in Path(result["artifacts"]["results"]).iterdir()) == [
        "backtest.json",
        "contract.yaml",
        "cycle.json",
        "equity.png",  # the backtest ran: its picture is kept with the gate's failure
    ]

    listed = json.loads(stratlab("strategies", "list", "--json", home=home).stdout)
    assert [(r["strategy_id"], r["status"], r["runs"]) for r in listed] == [("ema_cross_atr", "failed", 1)]
    shown = json.loads(stratlab("strategies", "show", "ema_cross_atr", "--json", home=home).stdout)
    assert shown["files"] == ["backtest.json", "contract.yaml", "cycle.json", "equity.png"]
    assert shown["cycle"]["run_id"] == result["run_id"]


def test_bad_input_gets_a_clear_error_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy_id: ../escape\nthesis: short\n")
    done = stratlab("cycle", "--strategy", str(bad), "--json", home=tmp_path)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["failed_phase"] == "designing"
    assert "strategy_id" in result["reason"] and "thesis" in result["reason"]
    assert tree(tmp_path) == ["bad.yaml"]

    shown = stratlab("strategies", "show", "../../etc/passwd", home=tmp_path)
    assert shown.returncode == 1 and "not a safe name" in shown.stderr and "Traceback" not in shown.stderr
    missing = stratlab("cycle", "--strategy", str(tmp_path / "nope.yaml"), home=tmp_path)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_data_list_shows_shipped_markets(tmp_path):
    done = stratlab("data", "list", "--json", home=tmp_path)
    rows = {(d["symbol"], d["timeframe"]): d for d in json.loads(done.stdout)}
    assert {("EURUSD", "1h"), ("SPX", "1d"), ("AAPL", "1d")} <= set(rows)
    assert rows[("EURUSD", "1h")]["license"] == "MIT" and rows[("EURUSD", "1h")]["rows"] > 6000


def test_in_process_runs_beat_often_enough_for_the_crash_automation():
    """Prefect's default heartbeat is every 180 s; the server's automation marks a run Crashed after 150 s
    of silence. A `stratlab` command's runs must beat at the lab's period, or a live cycle run in-process
    against the server would be marked Crashed."""
    probe = (
        "from stratlab.common import prepare_prefect_env; prepare_prefect_env(); "
        "from prefect.settings import get_current_settings; print(get_current_settings().flows.heartbeat_frequency)"
    )
    env = {k: v for k, v in os.environ.items() if "HEARTBEAT" not in k}
    for lab_seconds, expected in ((None, 30), ("45", 45)):
        if lab_seconds:
            env["STRATLAB_HEARTBEAT_SECONDS"] = lab_seconds
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
        assert int(done.stdout) == expected, done.stderr[-2000:]

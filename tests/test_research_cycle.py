"""The research_cycle flow under a real Prefect API: a full cycle, a gate failure, and errors that leave
no partial files."""

from __future__ import annotations

import json
import shutil
from uuid import UUID

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import STRATEGIES, tree

from flows.research_cycle import CycleParams, CycleResult, research_cycle, result_of
from strategy_contract import load_strategy
from tasks.data import load_bars
from tasks.storage import load_history, run_folders

pytestmark = pytest.mark.usefixtures("prefect_api")


def flow_run(run_id: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(run_id))


def artifacts_of(run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)])))


def run(**params):
    state = research_cycle(CycleParams(**params), return_state=True)
    return state, result_of(state)


def only_run(home, strategy_id: str):
    """The one run folder of a strategy (strategies/<id>/<stamp>-<run>/)."""
    [folder] = run_folders(strategy_id, home)
    return folder


def test_full_neuro_fuzzy_cycle_completes(strategies_home):
    state, result = run(strategy_file=str(STRATEGIES / "fuzzy_momentum_mlp.yaml"), seed=42)

    assert state.is_completed(), result.reason
    assert result.status == "completed" and result.verdict in ("promote_candidate", "iterate", "reject")
    assert flow_run(result.run_id).state.is_completed()
    folder = only_run(strategies_home, "fuzzy_momentum_mlp")
    assert result.artifacts["results"] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "assessment.json",
        "backtest.json",
        "contract.yaml",
        "cycle.json",
        "equity.png",
        "model.ckpt",
        "training.json",
    ]
    assert (strategies_home / "fuzzy_momentum_mlp.yaml").is_file()
    data_sha = json.loads((folder / "cycle.json").read_text())["provenance"]["data_sha256"]
    for name in ("training", "backtest", "assessment", "cycle"):
        record = json.loads((folder / f"{name}.json").read_text())["provenance"]
        assert record["seed"] == 42 and record["data_sha256"] == data_sha
        assert record["code_version"] and record["libraries"]["vectorbt"] and record["libraries"]["torch"]
        assert record["operator"]["gates"]["backtest"]["min_trades"] >= 1  # the floors it ran under
    backtest = json.loads((folder / "backtest.json").read_text())
    assert backtest["selection_part"] == "validation"  # a fitted model is ranked on bars it never fit
    assert backtest["held_out"]["start"] > backtest["selection"]["end"]  # held-out bars come later
    assessment = json.loads((folder / "assessment.json").read_text())
    assert assessment["verdict"] == result.verdict and assessment["learnings"]
    assert "held_out" not in json.dumps(assessment)  # the assessment reads the selection part only
    history = json.loads((folder / "cycle.json").read_text())["history"]
    assert history["selection_sharpe"] == backtest["selection"]["sharpe"]
    assert result.held_out.startswith("Held-out ")
    keys = {a.key for a in artifacts_of(result.run_id)}
    assert "cycle-fuzzy-momentum-mlp" in keys
    assert set(result.phase_seconds) == {
        "designing",
        "features",
        "training",
        "backtesting",
        "assessing",
        "saving",
    }


def test_running_a_contract_never_rewrites_it_and_keeps_every_run(strategies_home):
    shipped = strategies_home / "ema_cross_atr.yaml"
    shutil.copy(STRATEGIES / "ema_cross_atr.yaml", shipped)
    original = shipped.read_bytes()
    assert b"#" in original  # the shipped file has comments a rewrite would lose

    first = run(strategy_file=str(shipped))[1]
    second = run(strategy_file=str(shipped))[1]
    elsewhere = run(strategy_file=str(shipped), symbol="SPX", timeframe="1d")[1]

    assert shipped.read_bytes() == original
    assert first.strategy_id == second.strategy_id == "ema_cross_atr"
    runs = run_folders("ema_cross_atr", strategies_home)
    assert [str(p) for p in runs] == sorted([first.artifacts["results"], second.artifacts["results"]])
    assert all((p / "cycle.json").is_file() for p in runs)  # the first run was not replaced
    assert elsewhere.strategy_id == "ema_cross_atr@spx_1d"
    variant = load_strategy(strategies_home / "ema_cross_atr@spx_1d.yaml")
    assert variant.markets == ["SPX"] and variant.timeframes == ["1d"]
    assert only_run(strategies_home, "ema_cross_atr@spx_1d").name.endswith(
        elsewhere.run_id.replace("-", "")[:8]
    )


def test_a_contract_looser_than_the_operator_is_refused_naming_each_field(strategies_home):
    loose = yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text())
    loose["gates"] = {"backtest": {"min_trades": 0, "min_sharpe": -100}}
    loose["risk_model"]["fees"] = 0.0
    path = strategies_home.parent / "loose.yaml"
    path.write_text(yaml.safe_dump(loose))

    state, result = run(strategy_file=str(path))

    assert state.is_failed() and result.failed_phase == "designing"
    for field in ("gates.backtest.min_trades: 0", "gates.backtest.min_sharpe: -100", "risk_model.fees: 0"):
        assert field in result.reason
    assert tree(strategies_home) == []


def test_training_gate_failure_ends_failed_with_reason(strategies_home):
    contract = yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text())
    contract["strategy_id"] = "demanding_mlp"
    contract["gates"] = {"training": {"min_accuracy": 0.99}}
    path = strategies_home / "demanding_mlp.yaml"
    path.write_text(yaml.safe_dump(contract))

    state, result = run(strategy_file=str(path))

    assert state.is_failed()
    assert result.failed_phase == "training"
    assert result.reason.startswith("Training gate failed: accuracy 0.")
    assert result.reason.endswith("< 0.99")
    api_state = flow_run(result.run_id).state
    assert api_state.is_failed() and api_state.message == result.reason
    # a verdict was reached: the training results are kept for later designs, the backtest never ran
    folder = only_run(strategies_home, "demanding_mlp")
    assert sorted(p.name for p in folder.iterdir()) == [
        "contract.yaml",
        "cycle.json",
        "model.ckpt",
        "training.json",
    ]
    cycle = json.loads((folder / "cycle.json").read_text())
    assert cycle["history"]["status"] == "failed" and cycle["history"]["reason"] == result.reason


def test_exception_inside_a_task_fails_and_leaves_no_files(strategies_home, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    load_bars("SPX", "1d").iloc[-300:].to_csv(data / "SPX_1d.csv")  # too short to train on
    monkeypatch.setenv("STRATLAB_DATA_DIR", str(data))

    state, result = run(strategy_file=str(STRATEGIES / "fuzzy_momentum_mlp.yaml"))

    assert state.is_failed()
    assert result.failed_phase == "training"
    assert result.reason.startswith(
        "Training failed: ValueError: training: only 12 usable validation samples"
    )
    assert flow_run(result.run_id).state.message == result.reason
    assert tree(strategies_home) == []  # no contract, no results, no staging folder


def test_failure_while_saving_loses_nothing(strategies_home):
    blocker = strategies_home / "ema_cross_atr"
    blocker.write_text("a user's file where the results folder would go")
    state, result = run(strategy_file=str(STRATEGIES / "ema_cross_atr.yaml"))

    assert state.is_failed() and result.failed_phase == "saving"
    assert "is a file, not a results folder" in result.reason
    assert tree(strategies_home) == ["ema_cross_atr"]
    assert blocker.read_text() == "a user's file where the results folder would go"


def spx_with_other_held_out_bars(folder) -> None:
    """SPX daily whose held-out bars are replaced by a falling market. The held-out part starts after
    the last 20% begins plus the embargo (48 bars for these designs), where validation labels end."""
    bars = load_bars("SPX", "1d")
    cut = int(len(bars) * 0.8) + 48
    tail = bars.iloc[cut:].copy()
    falling = tail["close"].iloc[0] * np.exp(-0.002 * np.arange(1, len(tail) + 1))  # -0.2% a day
    shape = tail[["open", "high", "low", "close"]].div(tail["close"], axis=0)  # each bar's own shape
    tail[["open", "high", "low", "close"]] = shape.mul(falling, axis=0)
    folder.mkdir()
    pd.concat([bars.iloc[:cut], tail]).to_csv(folder / "SPX_1d.csv")


def two_designs(home, monkeypatch, data=None) -> tuple[CycleResult, CycleResult]:
    monkeypatch.setenv("STRATLAB_STRATEGIES_DIR", str(home))
    if data is not None:
        monkeypatch.setenv("STRATLAB_DATA_DIR", str(data))
    return run(seed=3, symbol="SPX")[1], run(seed=3, symbol="SPX")[1]


def test_designs_learn_from_selection_results_and_never_from_held_out_bars(tmp_path, monkeypatch):
    first, second = two_designs(tmp_path / "real", monkeypatch)

    # the second design read the first: with the same seed and an empty history it would repeat it
    assert first.strategy_id != second.strategy_id
    [(past, _), _] = load_history(tmp_path / "real").entries
    assert past.strategy_id == first.strategy_id and past.status == first.status
    assert past.selection_sharpe == first.metrics["backtest"]["selection"]["sharpe"]

    # ... and never its held-out result: other held-out bars change the held-out numbers, not the design
    spx_with_other_held_out_bars(tmp_path / "data")
    first_b, second_b = two_designs(tmp_path / "other", monkeypatch, data=tmp_path / "data")
    assert first_b.metrics["backtest"]["held_out"] != first.metrics["backtest"]["held_out"]
    assert first_b.metrics["backtest"]["selection"] == first.metrics["backtest"]["selection"]
    assert (first_b.strategy_id, second_b.strategy_id) == (first.strategy_id, second.strategy_id)
    assert load_strategy(tmp_path / "other" / f"{second.strategy_id}.yaml") == load_strategy(
        tmp_path / "real" / f"{second.strategy_id}.yaml"
    )


def test_unreadable_past_results_are_reported_not_skipped(strategies_home):
    broken = strategies_home / "lost_strategy" / "20260101T000000Z-00000000"
    broken.mkdir(parents=True)
    (broken / "cycle.json").write_text("{not json")

    old_layout = strategies_home / "old_strategy"
    old_layout.mkdir()
    (old_layout / "cycle.json").write_text("{}")

    history = load_history(strategies_home)

    assert history.entries == []
    assert len(history.unreadable) == 2
    assert str(old_layout / "cycle.json") in history.unreadable[0] and "old layout" in history.unreadable[0]
    assert str(broken) in history.unreadable[1]

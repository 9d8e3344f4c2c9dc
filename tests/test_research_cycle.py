"""The research_cycle flow under a real Prefect API: a full cycle, a gate failure, and errors that leave
no partial files."""

from __future__ import annotations

import json
from uuid import UUID

import pytest
import yaml
from conftest import STRATEGIES, tree

from flows.research_cycle import CycleParams, research_cycle, result_of
from strategy_contract import load_strategy
from tasks.data import load_bars
from tasks.storage import load_history

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


def test_full_neuro_fuzzy_cycle_completes(strategies_home):
    state, result = run(strategy_file=str(STRATEGIES / "fuzzy_momentum_mlp.yaml"), seed=42)

    assert state.is_completed(), result.reason
    assert result.status == "completed" and result.verdict in ("promote_candidate", "iterate", "reject")
    assert flow_run(result.run_id).state.is_completed()
    assert tree(strategies_home) == [
        "fuzzy_momentum_mlp",
        "fuzzy_momentum_mlp.yaml",
        "fuzzy_momentum_mlp/assessment.json",
        "fuzzy_momentum_mlp/backtest.json",
        "fuzzy_momentum_mlp/cycle.json",
        "fuzzy_momentum_mlp/model.ckpt",
        "fuzzy_momentum_mlp/training.json",
    ]
    data_sha = json.loads((strategies_home / "fuzzy_momentum_mlp/cycle.json").read_text())["provenance"][
        "data_sha256"
    ]
    for name in ("training", "backtest", "assessment", "cycle"):
        record = json.loads((strategies_home / f"fuzzy_momentum_mlp/{name}.json").read_text())["provenance"]
        assert record["seed"] == 42 and record["data_sha256"] == data_sha
        assert record["code_version"] and record["libraries"]["vectorbt"] and record["libraries"]["torch"]
    backtest = json.loads((strategies_home / "fuzzy_momentum_mlp/backtest.json").read_text())
    assert backtest["out_of_sample"]["start"] > backtest["in_sample"]["end"]  # held-out bars come later
    assessment = json.loads((strategies_home / "fuzzy_momentum_mlp/assessment.json").read_text())
    assert assessment["verdict"] == result.verdict and assessment["learnings"]
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
    assert tree(strategies_home / "demanding_mlp") == ["cycle.json", "model.ckpt", "training.json"]
    cycle = json.loads((strategies_home / "demanding_mlp/cycle.json").read_text())
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
    strict = yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text())
    strict["gates"] = {"backtest": {"min_win_rate": 0.0, "min_sharpe": -100, "max_drawdown": 1.0}}
    source = strategies_home.parent / "ema_cross_atr.yaml"
    source.write_text(yaml.safe_dump(strict))

    state, result = run(strategy_file=str(source))

    assert state.is_failed() and result.failed_phase == "saving"
    assert "is a file, not a results folder" in result.reason
    assert tree(strategies_home) == ["ema_cross_atr"]
    assert blocker.read_text() == "a user's file where the results folder would go"


def test_designer_cycle_feeds_the_next_design(strategies_home):
    state, result = run(seed=3, symbol="SPX")

    assert result.strategy_id.startswith(("trend_cross_spx_", "mean_reversion_spx_", "neuro_fuzzy_spx_"))
    assert load_strategy(strategies_home / f"{result.strategy_id}.yaml").symbol == "SPX"
    [(past, strategy)] = load_history(strategies_home)
    assert past.strategy_id == strategy.strategy_id == result.strategy_id
    assert past.status == result.status and past.reason == result.reason

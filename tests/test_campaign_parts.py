"""The campaign's parts, each on real data or real synthetic bars: requests, the sealed holdout,
walk-forward folds, stop criteria, the state machine and the offline critic."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO, STRATEGIES
from synthetic_markets import null_bars, write_market

from strategy_contract import load_strategy
from tasks.campaign.critic import critique_offline, footprint
from tasks.campaign.decide import stop_reason, verdict
from tasks.campaign.holdout import HoldoutError, open_holdout, seal_market
from tasks.campaign.record import CampaignRecord, TransitionError
from tasks.campaign.request import CampaignInputError, StopRules, check_markets, parse_request
from tasks.campaign.walkforward import purge_bars, walk_forward_folds


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"markets": ["XAUUSD:1h"]}, "markets[0]: no market data for XAUUSD 1h"),
        ({"markets": ["EURUSD:1h", "SPX:4w"]}, "markets[1]: '4w' is not a timeframe"),
        ({"markets": ["EURUSD"]}, "markets[0]: 'EURUSD' is not SYMBOL:timeframe"),
        ({"stop": {"max_usd": -5}}, "stop.max_usd: Input should be greater than or equal to 0"),
        ({"weights": {"return_quality": 0.5}}, "weights: they add up to 1.15; they must add up to 1"),
        ({"folds": 1}, "folds: Input should be greater than or equal to 2"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(data, message):
    with pytest.raises(CampaignInputError) as caught:
        check_markets(parse_request({"prompt": "trend following", **data}))
    assert message in str(caught.value)


def test_the_cli_refuses_a_bad_request_before_anything_runs(tmp_path):
    env = {"STRATLAB_REPORTS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stratlab",
            "campaign",
            "run",
            "--prompt",
            "trend",
            "--market",
            "EURUSD:1h",
            "--market",
            "NOPE:1d",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "markets[1]: no market data for NOPE 1d" in done.stderr
    assert not (tmp_path / "campaigns").exists()  # nothing was started


@pytest.fixture
def null_market(tmp_path, monkeypatch):
    write_market(tmp_path / "data", "EURUSD", "1h", null_bars(7, n=3000))
    monkeypatch.setenv("STRATLAB_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_the_sealed_bars_are_not_in_what_research_receives_and_open_once(null_market):
    market = seal_market("EURUSD", "1h", 0.2)
    assert len(market.bars) == 2400 and market.seal.sealed_bars == 600
    assert market.bars.index[-1] < pd.Timestamp(market.seal.sealed_from)
    again = seal_market("EURUSD", "1h", 0.5, sealed_from=market.seal.sealed_from)  # a resumed campaign
    assert len(again.bars) == 2400 and again.sha256 == market.sha256
    bars, start = open_holdout(null_market / "c1", market.seal, "candidate")
    assert start == 2400 and len(bars) == 3000
    with pytest.raises(HoldoutError, match="already evaluated"):
        open_holdout(null_market / "c1", market.seal, "another candidate")


def test_walk_forward_folds_test_one_contiguous_stretch_with_a_purge_gap():
    strategy = load_strategy(STRATEGIES / "ema_cross_atr.yaml")
    purge = purge_bars(strategy)
    assert purge >= strategy.optimization_space["ema_slow.window"].max
    for mode in ("anchored", "rolling"):
        folds = walk_forward_folds(6000, 5, mode, purge)
        assert [f.test[0] for f in folds[1:]] == [f.test[1] for f in folds[:-1]]  # contiguous OOS record
        assert folds[0].test[0] == 1000 and folds[-1].test[1] == 6000
        assert all(f.test[0] - f.train[1] >= purge for f in folds)
        assert all(f.train[0] == 0 for f in folds) == (mode == "anchored")
    with pytest.raises(CampaignInputError, match="folds: 5 folds of 600 development bars"):
        walk_forward_folds(600, 5, "anchored", purge)


def _it(score, **more):
    return {"iteration": 0, "best_score": score, "failed": None, "best": {}, "overfitting": None, **more}


@pytest.mark.parametrize(
    ("iterations", "rules", "clock", "reason"),
    [
        ([_it(0.5), _it(0.6)], {"max_iterations": 2}, (0, 0), "max_iterations"),
        ([_it(0.5)], {"max_hours": 0.5}, (0.6, 0), "max_hours"),
        ([_it(0.5)], {"max_usd": 1.0}, (0, 1.2), "budget_exhausted"),
        ([_it(None, failed="x"), _it(None, failed="y")], {"max_failed": 2}, (0, 0), "max_failed"),
        (
            [_it(0.5, best={"oos_max_drawdown": 0.5})] * 2,
            {"max_risk_breaches": 2},
            (0, 0),
            "risk_gate_breach",
        ),
        ([_it(0.5), _it(0.5), _it(0.501)], {"patience": 2}, (0, 0), "no_improvement"),
        ([_it(0.1), _it(0.9), _it(0.2), _it(0.95)], {"max_swing": 0.2}, (0, 0), "non_convergence"),
        ([_it(0.5, overfitting={"pbo": 0.8})] * 2, {"pbo_stop": 0.6}, (0, 0), "overfitting_signal"),
        ([_it(0.5, overfitting={"pbo": 0.8}), _it(0.6, overfitting={"pbo": 0.3})], {}, (0, 0), None),
        (
            [
                _it(0.5 + i / 10, best={"is_sharpe": 1 + i}, overfitting={"dsr": 0.9 - i / 10})
                for i in range(3)
            ],
            {},
            (0, 0),
            "overfitting_signal",
        ),
        ([_it(0.5), _it(0.6)], {}, (0, 0), None),
    ],
)
def test_each_stop_criterion_ends_with_its_reason(iterations, rules, clock, reason):
    assert stop_reason(iterations, StopRules(**rules), clock[0], clock[1], max_drawdown=0.25) == reason


def test_the_state_machine_refuses_what_seed_003_does_not_allow():
    record = CampaignRecord(campaign_id="c1", request={})
    with pytest.raises(TransitionError, match="queued -> campaign_running"):
        record.move("campaign_running", "x")
    for state in ("brief_generated", "code_generated", "campaign_running", "paused"):
        record.move(state, "step", 1)
    assert record.resumed_state() == "campaign_running"
    record.move("campaign_running", "resumed", 1)  # back from a pause to where it was
    record.move("campaign_evaluated", "done", 1)
    record.move("completed", "max_iterations", 1)
    with pytest.raises(TransitionError):
        record.move("paused", "too late")
    assert [t.state for t in record.transitions][-2:] == ["campaign_evaluated", "completed"]


def test_the_verdict_lists_every_criterion_and_rejects_without_an_edge():
    from tasks.campaign.request import CampaignGates

    gates = CampaignGates()
    good = {"oos_max_drawdown": 0.1, "oos_sharpe": 2.0, "oos_degradation": 0.1, "oos_trades": 80}
    luck = {"dsr": 0.99, "pbo": 0.1}
    holdout = {"max_drawdown": 0.05, "sharpe": 1.5}
    assert verdict(good, luck, holdout, gates)[0] == "promote_candidate"
    name, rows = verdict(good, {"dsr": 0.8, "pbo": 0.1}, holdout, gates)
    assert name == "iterate" and [r["criterion"] for r in rows if not r["passed"]] == [
        "deflated Sharpe ratio"
    ]
    assert verdict({**good, "oos_sharpe": 0.2}, luck, holdout, gates)[0] == "reject"
    assert verdict(good, {"dsr": 0.3, "pbo": 0.1}, holdout, gates)[0] == "reject"
    assert verdict(None, None, None, gates)[0] == "reject"


def test_the_offline_critic_follows_its_rules_within_the_footprint():
    contract = load_strategy(STRATEGIES / "ema_cross_atr.yaml")
    space = contract.optimization_space
    keys = [k for k, o in space.items() if o.enabled]
    inner = {k: (space[k].min + space[k].max) / 2 for k in keys}
    inner = {k: round(v / space[k].step) * space[k].step for k, v in inner.items()}
    common = {
        "since_improvement": 0,
        "tried_families": ["trend_cross"],
        "min_trades": 20,
        "max_drawdown": 0.25,
        "iteration": 1,
        "fresh": {},
    }

    narrowed = critique_offline(
        contract, {**inner, "oos_trades": 50, "oos_max_drawdown": 0.1}, max_changes=10, **common
    )
    assert {a["rule"] for a in narrowed.actions} == {"narrow_space"}
    for k in keys:
        new = narrowed.contract.optimization_space[k]
        assert new.max - new.min < space[k].max - space[k].min and new.min <= inner[k] <= new.max
    assert narrowed.diff.startswith("--- a/iter_1.yaml\n+++ b/iter_2.yaml")

    edge = {**inner, keys[0]: space[keys[0]].max, "oos_trades": 50, "oos_max_drawdown": 0.1}
    shifted = critique_offline(contract, edge, max_changes=10, **common)
    assert shifted.actions[0]["rule"] == "shift_space"
    assert shifted.contract.optimization_space[keys[0]].max > space[keys[0]].max

    few = critique_offline(
        contract, {**inner, "oos_trades": 3, "oos_max_drawdown": 0.1}, max_changes=10, **common
    )
    assert few.actions[0]["rule"] == "loosen_entry"
    assert few.contract.optimization_space["ema_fast.window"].max < space["ema_fast.window"].max

    deep = critique_offline(
        contract, {**inner, "oos_trades": 50, "oos_max_drawdown": 0.6}, max_changes=1, **common
    )
    assert [a["rule"] for a in deep.actions] == ["tighten_stops"]
    assert footprint(contract, deep.contract) == ["risk_model.stop_loss.multiple"]  # one change allowed

    stalled = critique_offline(
        contract,
        {**inner, "oos_trades": 50},
        max_changes=2,
        **{
            **common,
            "since_improvement": 2,
            "fresh": {"trend_cross": None, "mean_reversion": lambda: contract},
        },
    )
    assert stalled.actions[0]["rule"] == "switch_family" and stalled.actions[0]["family"] == "mean_reversion"


# --- Claude's critic: the patch tool (no network: the tool itself) --------------------------------


def _critic_tools(max_changes: int = 2):
    from tasks.campaign.brief import fresh_contract
    from tasks.llm.campaign import CriticTools, MarketView

    contract = fresh_contract("trend_cross", "EURUSD", "1h", 7, 1e-3)
    market = MarketView("EURUSD", "1h", 1000, "2015-01-01", "2015-03-01", "2015-03-02", 1e-3)
    return contract, CriticTools(contract, market, max_changes, iteration=1)


def test_merge_patch_merges_objects_deletes_nulls_and_replaces_lists():
    from tasks.llm.campaign import merge_patch

    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "keep": True}
    assert merge_patch(target, {"a": {"b": None, "d": 3}, "l": [9]}) == {
        "a": {"c": 2, "d": 3},
        "l": [9],
        "keep": True,
    }
    assert target == {"a": {"b": 1, "c": 2}, "l": [1, 2], "keep": True}  # the contract itself is untouched


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        ({"strategy_id": "other"}, "strategy_id: a campaign's critic cannot change it"),
        ({"timeframes": ["1d"]}, "timeframes: a campaign's critic cannot change it"),
        ({"thesis": "same logic, new words"}, "it changes nothing"),
        ({"risk_model": {"slippage": 0.0}}, "risk_model.slippage"),  # below the operator's cost floor
        ({"optimization_space": {"ma_fast.window": {"max": 999}}}, "ma_fast.window"),  # past the catalog
        (
            {
                "optimization_space": {
                    "ma_fast.window": {"min": 4, "max": 16, "value": 8},
                    "ma_slow.window": {"min": 60, "max": 150, "value": 100},
                    "risk_model.stop_loss.multiple": {"enabled": False},
                }
            },
            "changes 3 fields",
        ),
    ],
)
def test_a_patch_that_breaks_a_rule_goes_back_naming_it(patch, named):
    contract, tools = _critic_tools(max_changes=2)
    text, is_error, saved = tools.run("propose_patch", {"rationale": "because", "patch": patch})
    assert is_error and saved is None and named in text, text
    assert tools.rejected == 1


def test_a_patch_within_the_footprint_gives_the_next_contract():
    contract, tools = _critic_tools(max_changes=2)
    patch = {"optimization_space": {"ma_fast.window": {"min": 4, "max": 16, "value": 8}}}
    text, is_error, saved = tools.run("propose_patch", {"rationale": "narrow it", "patch": patch})
    assert not is_error, text
    rationale, _, nxt, changed = saved
    assert changed == ["ma_fast.window"] and nxt.version == contract.version + 1
    assert nxt.optimization_space["ma_fast.window"].max == 16 and nxt.markets == contract.markets

"""Operator settings: the bar a strategy is judged by belongs to the operator; a contract may tighten
it, never loosen it, and the designer (Claude included) gets a looser contract back field by field."""

from __future__ import annotations

import os
import tomllib

import pytest
import yaml
from conftest import REPO, STRATEGIES
from fake_anthropic import FakeAnthropic, tool_use

from strategy_contract import ContractError, load_strategy, parse_strategy
from tasks.settings import (
    OperatorSettings,
    SettingsError,
    asset_class,
    cost_floor,
    enforce_operator_rules,
    load_settings,
    operator_settings,
)

EMA = yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text())  # EURUSD 1h, fx costs


@pytest.fixture(autouse=True)
def no_operator_env(monkeypatch):
    """Each test starts from the shipped file, whatever the shell running the tests has set."""
    for name in list(os.environ):
        if name == "STRATLAB_SETTINGS" or name.startswith(
            ("STRATLAB_GATES_", "STRATLAB_COSTS_", "STRATLAB_SYMBOLS_", "STRATLAB_MIN_HELD_OUT")
        ):
            monkeypatch.delenv(name)
    monkeypatch.delenv("STRATLAB_DEFAULT_ASSET_CLASS", raising=False)


def contract(**changes) -> dict:
    data = yaml.safe_load(yaml.safe_dump(EMA))  # a deep copy
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def test_defaults_load_from_the_shipped_file():
    settings = operator_settings()

    assert settings.model_dump() == OperatorSettings().model_dump()  # the file and the code agree
    t, b = settings.gates.training, settings.gates.backtest
    assert (t.min_accuracy, t.max_final_loss, t.min_loss_decrease) == (0.45, 0.8, 0.2)
    assert (b.min_win_rate, b.max_drawdown, b.min_sharpe, b.min_trades) == (0.45, 0.40, -0.5, 1)
    assert settings.min_held_out == 0.2
    assert cost_floor("EURUSD", settings) == (0.0001, 0.00005)
    assert cost_floor("AAPL", settings) == cost_floor("SPX", settings) == (0.0005, 0.0002)
    assert settings.origin("gates.backtest.min_trades") == "stratlab.toml [gates.backtest]"
    # the shipped file spells out every key (default_asset_class is derived, shown commented out)
    shipped = tomllib.loads((REPO / "stratlab.toml").read_text())
    assert shipped == settings.model_dump(exclude={"default_asset_class"})


def test_environment_overrides_win_and_a_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("STRATLAB_GATES_BACKTEST_MIN_SHARPE", "-0.2")
    monkeypatch.setenv("STRATLAB_COSTS_FX_FEES", "0.0003")
    monkeypatch.setenv("STRATLAB_MIN_HELD_OUT", "0.25")
    settings = operator_settings()
    assert settings.gates.backtest.min_sharpe == -0.2 and settings.min_held_out == 0.25
    assert cost_floor("EURUSD", settings) == (0.0003, 0.00005)
    assert settings.origin("costs.fx.fees") == "environment variable STRATLAB_COSTS_FX_FEES"

    monkeypatch.setenv("STRATLAB_COSTS_FX_FEES", "cheap")
    with pytest.raises(SettingsError) as err:
        operator_settings()
    assert "environment variable STRATLAB_COSTS_FX_FEES='cheap': costs.fx.fees: not a number" in str(
        err.value
    )

    monkeypatch.setenv("STRATLAB_COSTS_FX_FEES", "0.0003")
    monkeypatch.setenv("STRATLAB_GATES_BACKTEST_MIN_TRADES", "0")
    with pytest.raises(
        SettingsError, match=r"STRATLAB_GATES_BACKTEST_MIN_TRADES='0': gates.backtest.min_trades: "
    ):
        operator_settings()

    monkeypatch.delenv("STRATLAB_GATES_BACKTEST_MIN_TRADES")
    monkeypatch.setenv("STRATLAB_GATES_BACKTEST_MIN_SHARP", "1")  # a typo is an error, not ignored
    with pytest.raises(SettingsError, match="did you mean 'STRATLAB_GATES_BACKTEST_MIN_SHARPE'"):
        operator_settings()


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            "[gates.backtest]\nmin_sharp = 0.1\n",
            "gates.backtest.min_sharp",
            "unknown key (did you mean 'min_sharpe'?)",
        ),
        (
            "[gates.backtest]\nmin_trades = '3'\n",
            "gates.backtest.min_trades",
            "Input should be a valid integer",
        ),
        ("min_held_out = 1.5\n", "min_held_out", "Input should be less than 1"),
        ("[costs.fx]\nfees = true\n", "costs.fx.fees", "Input should be a valid number"),
        (
            "[symbols]\nBTCUSD = 'crypto'\n",
            "symbols.BTCUSD",
            "asset class 'crypto' has no [costs.crypto] table",
        ),
        ("[costs.crypto]\nfees = 0.001\n", "costs.crypto.slippage", "missing"),
    ],
)
def test_a_bad_settings_file_names_the_file_the_key_and_the_reason(tmp_path, monkeypatch, text, key, reason):
    path = tmp_path / "ops.toml"
    path.write_text(text)
    monkeypatch.setenv("STRATLAB_SETTINGS", str(path))
    with pytest.raises(SettingsError) as err:
        operator_settings()
    assert f"{path}: {key}: {reason}" in str(err.value)


def test_a_missing_or_broken_settings_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STRATLAB_SETTINGS", str(tmp_path / "nowhere.toml"))
    with pytest.raises(SettingsError, match="STRATLAB_SETTINGS=.*nowhere.toml: settings file not found"):
        operator_settings()
    (tmp_path / "bad.toml").write_text("min_held_out = \n")
    monkeypatch.setenv("STRATLAB_SETTINGS", str(tmp_path / "bad.toml"))
    with pytest.raises(SettingsError, match="bad.toml: not valid TOML"):
        operator_settings()


def test_a_looser_contract_is_rejected_one_problem_per_field():
    loose = parse_strategy(
        contract(
            gates={"backtest": {"min_trades": 0, "min_sharpe": -100}},
            risk_model__fees=0,
            data={"train": 0.75, "validation": 0.2, "test": 0.05, "embargo_bars": 24},
        )
    )
    with pytest.raises(ContractError) as err:
        enforce_operator_rules(loose)
    assert err.value.problems == [
        (
            "gates.backtest.min_sharpe",
            "-100 is looser than the operator's minimum of -0.5 (stratlab.toml [gates.backtest])",
        ),
        (
            "gates.backtest.min_trades",
            "0 is looser than the operator's minimum of 1 (stratlab.toml [gates.backtest])",
        ),
        (
            "risk_model.fees",
            "0 is looser than the operator's floor of 0.0001 for EURUSD (asset class fx; stratlab.toml [costs.fx])",
        ),
        (
            "data.test",
            "0.05 is looser than the operator's minimum held-out fraction of 0.2 (stratlab.toml min_held_out)",
        ),
    ]
    maxima = parse_strategy(
        contract(gates={"training": {"max_final_loss": 2.0}, "backtest": {"max_drawdown": 0.9}})
    )
    with pytest.raises(ContractError) as err:
        enforce_operator_rules(maxima)
    assert [p for p, _ in err.value.problems] == [
        "gates.training.max_final_loss",
        "gates.backtest.max_drawdown",
    ]
    assert "0.9 is looser than the operator's maximum of 0.4" in str(err.value)


def test_unset_fields_take_the_operator_values_and_stay_unset():
    settings = load_settings(
        None,
        {
            "STRATLAB_GATES_BACKTEST_MIN_TRADES": "10",
            "STRATLAB_GATES_TRAINING_MAX_FINAL_LOSS": "0.7",
            "STRATLAB_COSTS_FX_SLIPPAGE": "0.0001",
            "STRATLAB_MIN_HELD_OUT": "0.3",
        },
    )
    bare = parse_strategy(contract(risk_model__fees=None, risk_model__slippage=None, data=None))

    run = enforce_operator_rules(bare, settings)

    assert run.gates.backtest.min_trades == 10 and run.gates.training.max_final_loss == 0.7
    assert run.gates.backtest.min_sharpe == -0.5
    assert (run.risk_model.fees, run.risk_model.slippage) == (0.0001, 0.0001)  # not the contract's 0.0005
    assert (run.data.train, run.data.validation, run.data.test) == (0.525, 0.175, 0.3)
    assert run.data.embargo_bars == 24
    # what the designer set is unchanged, and still all it set: saving writes no operator values
    assert run.model_dump(exclude_unset=True) == bare.model_dump(exclude_unset=True)
    assert run.strategy_id == bare.strategy_id and run.version == bare.version
    assert enforce_operator_rules(run, settings) == run


def test_stricter_values_are_kept():
    strict = parse_strategy(
        contract(
            gates={
                "training": {"min_accuracy": 0.6, "max_final_loss": 0.5},
                "backtest": {"min_trades": 30, "min_sharpe": 0.5, "max_drawdown": 0.2},
            },
            risk_model__fees=0.001,
            data={"train": 0.5, "validation": 0.2, "test": 0.3, "embargo_bars": 24},
        )
    )
    run = enforce_operator_rules(strict)
    assert run.gates.training.min_accuracy == 0.6 and run.gates.training.max_final_loss == 0.5
    assert run.gates.training.min_loss_decrease == 0.2  # unset: the operator's
    assert (
        run.gates.backtest.min_trades,
        run.gates.backtest.min_sharpe,
        run.gates.backtest.max_drawdown,
    ) == (
        30,
        0.5,
        0.2,
    )
    assert run.risk_model.fees == 0.001 and run.data.test == 0.3


def test_an_unmapped_symbol_gets_the_default_class(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[symbols]\nBTCUSD = "fx"\n"BRK.B" = "stocks"\n')
    settings = load_settings(path, {})
    assert asset_class("BTCUSD", settings) == "fx" and asset_class("BRK.B", settings) == "stocks"
    assert asset_class("EURUSD", settings) == "fx"  # the shipped data's mapping stays
    # unmapped: the costliest class (ties: the first listed), never the cheap fx
    assert settings.default_asset_class == "stocks" and asset_class("XYZ", settings) == "stocks"
    assert cost_floor("GBPUSD", settings) == (0.0005, 0.0002)
    dearer = load_settings(path, {"STRATLAB_COSTS_INDICES_FEES": "0.001"})
    assert asset_class("XYZ", dearer) == "indices"
    chosen = load_settings(path, {"STRATLAB_DEFAULT_ASSET_CLASS": "fx"})
    assert asset_class("XYZ", chosen) == "fx"
    # and it binds a contract for that symbol
    with pytest.raises(ContractError, match="floor of 0.0005 for XYZ \\(asset class stocks"):
        enforce_operator_rules(parse_strategy(contract(markets=["XYZ"])), settings)


@pytest.mark.parametrize("path", sorted(STRATEGIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_contract_passes_the_defaults(path):
    shipped = load_strategy(path)
    run = enforce_operator_rules(shipped)
    assert run.risk_model == shipped.risk_model and run.data == shipped.data and run.gates == shipped.gates


def test_claude_gets_a_looser_contract_back_and_repairs_it(monkeypatch, tmp_path):
    from tasks.data import list_datasets
    from tasks.llm.budget import BudgetLedger
    from tasks.llm.design import DesignTools, design_with_claude
    from tasks.llm.pricing import DEFAULT_MODEL
    from tasks.llm.session import ClaudeSession

    spx = contract(strategy_id="claude_ema_spx", markets=["SPX"], timeframes=["1d"])  # fx costs on SPX
    spx["gates"] = {"backtest": {"min_trades": 0}}
    repaired = yaml.safe_load(yaml.safe_dump(spx))
    repaired["risk_model"].update(fees=0.0005, slippage=0.0003)
    repaired["gates"]["backtest"]["min_trades"] = 5
    with FakeAnthropic() as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-settings")
        monkeypatch.setenv("STRATLAB_LEDGER", str(tmp_path / "ledger.sqlite3"))
        monkeypatch.setenv("STRATLAB_DAILY_BUDGET_USD", "5")
        fake.queue(
            tool_use("validate_contract", spx, ("save_contract", spx)),  # both tools hold the line
            tool_use("save_contract", repaired),
        )
        tools = DesignTools(list_datasets(), [], set(), "SPX", "1d")
        outcome = design_with_claude(ClaudeSession(DEFAULT_MODEL, BudgetLedger()), tools)

    rejections = [b for b in fake.requests[1]["messages"][-1]["content"] if b.get("type") == "tool_result"]
    assert [r["is_error"] for r in rejections] == [True, True]
    assert rejections[0]["content"] == rejections[1]["content"]
    assert rejections[1]["content"].split("\n") == [
        "gates.backtest.min_trades: 0 is looser than the operator's minimum of 1 (stratlab.toml [gates.backtest])",
        "risk_model.fees: 0.0001 is looser than the operator's floor of 0.0005 for SPX "
        "(asset class indices; stratlab.toml [costs.indices])",
        "risk_model.slippage: 0.00005 is looser than the operator's floor of 0.0002 for SPX "
        "(asset class indices; stratlab.toml [costs.indices])",
    ]
    saved = outcome.strategy
    assert (saved.risk_model.fees, saved.risk_model.slippage, saved.gates.backtest.min_trades) == (
        0.0005,
        0.0003,
        5,
    )
    assert saved.gates.backtest.min_sharpe == -0.5  # unset: the operator's
    assert outcome.rejected_contracts == 2 and [c.ok for c in outcome.tool_calls] == [False, False, True]
    assert len(fake.requests) == 2 and fake.pending == 0

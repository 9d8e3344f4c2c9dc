"""The strategy contract: shipped files are valid, every class of bad input is rejected with the field
path and the reason, names are safe, writes are atomic, and the committed JSON Schema is current."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from conftest import STRATEGIES

from strategy_contract import (
    ContractError,
    load_strategy,
    parse_strategy,
    save_strategy,
    validate_strategy_id,
)
from strategy_contract.schema import SCHEMA_PATH, render_schema

PILOT = yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text())


@pytest.mark.parametrize("name", ["ema_cross_atr", "fuzzy_momentum_mlp"])
def test_shipped_strategies_are_valid(name):
    strategy = load_strategy(STRATEGIES / f"{name}.yaml")
    assert strategy.strategy_id == name
    assert strategy.version >= 1


def test_neuro_fuzzy_strategy_has_model_and_fuzzy_inputs():
    strategy = load_strategy(STRATEGIES / "fuzzy_momentum_mlp.yaml")
    assert strategy.has_model
    assert sum(len(sets) for sets in strategy.fuzzy_sets.values()) >= 6


def test_parameters_get_catalog_defaults_and_stay_integers():
    data = copy.deepcopy(PILOT)
    data["indicators"][2]["params"] = {}
    strategy = parse_strategy(data)
    assert strategy.indicator("atr_14").params == {"window": 14}
    assert isinstance(strategy.indicator("ema_slow").params["window"], int)


def reject(mutate) -> list[tuple[str, str]]:
    data = copy.deepcopy(PILOT)
    mutate(data)
    with pytest.raises(ContractError) as info:
        parse_strategy(data, "bad.yaml")
    assert str(info.value).startswith("bad.yaml: invalid strategy contract")
    return info.value.problems


def test_missing_required_field_is_named():
    problems = reject(lambda d: d.pop("entry_rules"))
    assert ("entry_rules", "Field required") in problems


def test_unknown_field_is_rejected_not_ignored():
    problems = reject(lambda d: d["risk_model"].update(stop_los={"kind": "percent", "value": 0.01}))
    assert problems[0][0] == "risk_model.stop_los"


def test_unknown_indicator_type_suggests_close_match():
    problems = reject(lambda d: d["indicators"][0].update(type="emaa"))
    assert problems == [("indicators[0].type", "unknown indicator type 'emaa' (did you mean 'ema'?)")]


def test_parameter_out_of_catalog_bounds():
    problems = reject(lambda d: d["indicators"][0]["params"].update(window=1))
    assert problems[0][0] == "indicators[0]"
    assert "params.window: 1 is outside [2, 400]" in problems[0][1]


def test_unknown_parameter_name():
    problems = reject(lambda d: d["indicators"][0]["params"].update(windwo=3))
    assert "'ema' has no parameter 'windwo' (did you mean 'window'?)" in problems[0][1]


def test_macd_fast_must_be_faster_than_slow():
    problems = reject(
        lambda d: d["indicators"].append({"id": "m", "type": "macd", "params": {"fast": 30, "slow": 20}})
    )
    assert problems[0][0] == "indicators[3]" and "fast (30) must be less than slow (20)" in problems[0][1]


def test_rule_with_unknown_reference_names_path_and_hint():
    problems = reject(lambda d: d["entry_rules"][0].update(left="ema_fsat"))
    assert problems == [("entry_rules[0].left", "unknown reference 'ema_fsat' (did you mean 'ema_fast'?)")]


def test_nested_rule_with_bad_operator():
    problems = reject(lambda d: d["exit_rules"].append({"any": [{"left": "close", "op": "=>", "right": 1}]}))
    assert problems[0][0] == "exit_rules[1].any[0].op"


def test_model_reference_without_model():
    problems = reject(lambda d: d["entry_rules"].append({"left": "model.prob_up", "op": ">", "right": 0.5}))
    assert "this strategy has no model" in problems[0][1]


def test_atr_stop_must_point_at_an_atr_indicator():
    problems = reject(lambda d: d["risk_model"]["stop_loss"].update(indicator="ema_fast"))
    assert problems[0][0] == "risk_model.stop_loss.indicator"


def test_membership_points_must_be_ordered():
    def mutate(d):
        d["fuzzy_sets"] = {"ema_fast": {"high": {"shape": "triangular", "points": [3, 1, 2]}}}

    problems = reject(mutate)
    assert problems[0][0] == "fuzzy_sets.ema_fast.high.triangular.points"


def test_fuzzy_set_on_unknown_indicator():
    problems = reject(
        lambda d: d.update(fuzzy_sets={"rsi": {"low": {"shape": "gaussian", "mean": 1, "sigma": 1}}})
    )
    assert problems[0][0] == "fuzzy_sets.rsi"


def test_split_must_sum_to_one():
    problems = reject(lambda d: d.update(data={"train": 0.7, "validation": 0.2, "test": 0.2}))
    assert problems[0][0] == "data" and "add up to 1" in problems[0][1]


def test_embargo_shorter_than_label_horizon_would_leak():
    data = yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text())
    data["data"]["embargo_bars"] = 5
    with pytest.raises(ContractError) as info:
        parse_strategy(data)
    assert info.value.problems[0][0] == "data.embargo_bars"


def test_optimization_space_bounds():
    problems = reject(
        lambda d: d["optimization_space"].update(
            {"ema_fast.window": {"min": 1, "max": 30, "step": 1, "value": 12}}
        )
    )
    assert problems[0][0] == "optimization_space.ema_fast.window"
    problems = reject(
        lambda d: d["optimization_space"].update(
            {"ema_fats.window": {"min": 5, "max": 30, "step": 1, "value": 12}}
        )
    )
    assert "did you mean 'ema_fast.window'" in problems[0][1]


def test_strategy_without_any_exit_is_rejected():
    def mutate(d):
        d["exit_rules"] = []
        d["risk_model"] = {}

    assert reject(mutate)[0][0] == "exit_rules"


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "", "a" * 65, "Upper", "has space", "x.yaml", "ab"])
def test_unsafe_strategy_names_are_rejected(name):
    with pytest.raises(ValueError, match="strategy_id"):
        validate_strategy_id(name)
    problems = reject(lambda d: d.update(strategy_id=name))
    assert problems[0][0] == "strategy_id"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("strategy_id: x\nthesis: [unclosed\n")
    with pytest.raises(ContractError, match=r"(?s)broken.yaml: .*line \d+, column"):
        load_strategy(bad)


def test_save_is_atomic_and_round_trips(tmp_path):
    strategy = parse_strategy(PILOT)
    path = save_strategy(strategy, tmp_path)
    assert path.name == "ema_cross_atr.yaml"
    assert load_strategy(path) == strategy
    assert [p.name for p in tmp_path.iterdir()] == ["ema_cross_atr.yaml"]  # no temp file left behind


def test_committed_json_schema_is_current():
    assert SCHEMA_PATH.read_text() == render_schema(), "run: python -m strategy_contract.schema"


def test_schema_describes_the_rule_language():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert {"Condition", "AllOf", "AnyOf", "MLPModel", "Triangular"} <= set(schema["$defs"])
    assert "strategy_id" in schema["required"]

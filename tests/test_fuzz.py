"""Inputs from outside are accepted soundly or refused with the module's own error naming the field, file
or row: a short hypothesis run of every target of ``input_fuzz`` (``bench/fuzz_inputs.py`` runs
thousands), and the examples the fuzzer found, each pinned with the error a user now sees."""

from __future__ import annotations

import time

import pytest
import yaml
from input_fuzz import TARGETS, fuzz, scratch_file, valid_contract_dict

from strategy_contract import ContractError, load_strategy, parse_strategy, strategy_to_yaml
from strategy_contract.models import StrategyIdError, validate_strategy_id
from tasks.campaign.report import campaign_dir
from tasks.campaign.request import CampaignInputError


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_inputs_are_accepted_soundly_or_refused_by_name(target):
    tally = fuzz(target, max_examples=40)
    assert tally.cases >= 20
    assert tally.clean, "\n".join(tally.defects)


# --- regressions: what the fuzzer found ---------------------------------------------------------------


def contract(**changes) -> dict:
    data = valid_contract_dict()
    data.update(changes)
    return data


def refusal(data) -> ContractError:
    with pytest.raises(ContractError) as caught:
        parse_strategy(data)
    return caught.value


def file_refusal(content: bytes) -> ContractError:
    with pytest.raises(ContractError) as caught:
        load_strategy(scratch_file("regression.yaml", content))
    return caught.value


def test_an_indicator_parameter_too_large_for_a_float_is_out_of_range():
    data = contract()
    data["indicators"][0]["params"]["window"] = 10**400  # was OverflowError from float()
    error = refusal(data)
    assert "indicators[0]: params.window: <an integer of about 401 digits> is outside [2, 400]" in str(error)


def test_an_integer_too_long_to_print_is_shown_by_its_size():
    error = refusal(contract(thesis=10**5000))  # was ValueError: repr() of a 5,001-digit int
    assert (
        "thesis",
        "Input should be a valid string (got <an integer of about 5001 digits>)",
    ) in error.problems


def test_a_revision_number_must_fit_in_a_file():
    error = refusal(contract(version=10**5000))  # was accepted, then strategy_to_yaml raised ValueError
    assert error.problems[0][0] == "version" and "less than or equal to 1000000" in error.problems[0][1]


@pytest.mark.parametrize(("path", "value"), [("right", float("nan")), ("right", float("inf"))])
def test_a_rule_threshold_is_a_finite_number(path, value):
    data = contract(entry_rules=[{"left": "close", "op": ">", "right": value}])
    error = refusal(data)  # NaN was accepted (compares false with everything) and did not read back equal
    assert any(p.startswith("entry_rules[0].right") and "finite" in r for p, r in error.problems)


def test_a_gate_is_a_finite_number():
    error = refusal(contract(gates={"backtest": {"min_sharpe": float("nan")}}))
    assert error.problems[0][0] == "gates.backtest.min_sharpe"


def test_a_rule_tree_nested_too_deep_is_refused_by_its_path():
    node: dict = {"left": "close", "op": ">", "right": 1.0}
    for _ in range(2000):
        node = {"all": [node]}
    error = refusal(contract(entry_rules=[node]))  # was RecursionError
    (path, reason), *_ = error.problems
    assert path.startswith("entry_rules[0].all[0].all[0]") and "nested deeper than 64 levels" in reason


def test_an_empty_key_is_named():
    error = refusal({**contract(), "": None})  # was a problem with no field path
    assert ("''", "Extra inputs are not permitted (got None)") in error.problems


def test_a_contract_file_that_is_not_utf8_says_so():
    error = file_refusal(b"strategy_id: caf\xe9_rsi\n")  # was UnicodeDecodeError
    assert error.source.endswith("regression.yaml")
    assert "not UTF-8 text (byte 16 is 0xe9); save it as UTF-8" in str(error)


@pytest.mark.parametrize(
    "text", ["version: " + "9" * 5000, "thesis: 2020-13-45"], ids=["5000-digit int", "no such date"]
)
def test_a_yaml_value_python_cannot_build_is_refused(text):
    error = file_refusal(text.encode())  # was ValueError from PyYAML's constructor
    assert "a value is not readable" in str(error)


def test_yaml_nested_past_the_recursion_limit_is_refused():
    error = file_refusal(b"[" * 5000 + b"]" * 5000)  # was RecursionError
    assert "nested too deeply to read" in str(error)


def test_a_yaml_alias_bomb_is_refused_at_once():
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = yaml.safe_dump(contract()) + "\n".join(lines) + "\n"
    began = time.perf_counter()
    error = file_refusal(text.encode())  # a billion values: pydantic walked them for minutes
    assert time.perf_counter() - began < 2
    (path, reason), *_ = error.problems
    assert path.startswith("l8[") and "more than 100,000 values (YAML aliases that expand?)" in reason


def test_a_list_that_contains_itself_is_refused():
    error = file_refusal(b"strategy_id: &a [*a]\n")
    assert error.problems[0][0].startswith("strategy_id[0][0]")


def test_a_symbol_from_a_form_is_refused_as_a_contract_field():
    strategy = parse_strategy(contract())
    with pytest.raises(ContractError) as caught:  # was pydantic's ValidationError
        strategy.on_market("EUR/USD", "1h")
    assert "markets[0]: String should match pattern" in str(caught.value)
    assert str(caught.value).startswith("fuzz_base on 'EUR/USD' '1h': invalid strategy contract")


@pytest.mark.parametrize("name", ["abc\n", "", None, 5, "../x"])
def test_a_campaign_id_is_refused_whole_with_the_campaign_error(name):
    with pytest.raises(CampaignInputError, match=r"^campaign id .*: use 1-64 lowercase letters"):
        campaign_dir(name)  # "abc\n" was accepted ($ matches before a final newline); 5 was TypeError


@pytest.mark.parametrize("name", ["../etc", "abc\x00", "ａｂｃ", "abc\n", "a" * 89, None])
def test_a_strategy_id_is_refused_with_its_own_error(name):
    with pytest.raises(StrategyIdError, match=r"^strategy_id: "):
        validate_strategy_id(name)


def test_an_accepted_contract_reads_back_unchanged():
    strategy = parse_strategy(contract())
    assert parse_strategy(yaml.safe_load(strategy_to_yaml(strategy))) == strategy

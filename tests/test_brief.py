"""The campaign's offline spec compiler: a few sentences become a valid first contract and a brief that
says what was and was not understood."""

from __future__ import annotations

import re

import yaml

from strategy_contract import parse_strategy, strategy_to_yaml, validate_strategy_id
from strategy_contract.models import Condition
from tasks.campaign.brief import Brief, compile_brief

MARKETS = [("EURUSD", "1h"), ("SPX", "1d")]
VOL = 0.001


def brief(prompt: str, seed: int = 7) -> Brief:
    return compile_brief(prompt, MARKETS, seed, VOL)


def section(markdown: str, title: str) -> str:
    """The text of one '## title' section of the brief."""
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_a_trend_prompt_gives_a_moving_average_crossover_on_the_first_market():
    b = brief("I want a trend-following EMA crossover on EURUSD 1h.")
    c = b.contract
    assert b.family == "trend_cross"
    assert (c.markets, c.timeframes) == (["EURUSD"], ["1h"])
    assert {i.type for i in c.indicators if i.id.startswith("ma_")} == {"ema"}  # the EMA asked for
    entry = c.entry_rules[0]
    assert isinstance(entry, Condition) and entry.op == "crosses_above"
    assert (entry.left, entry.right) == ("ma_fast", "ma_slow")
    assert parse_strategy(yaml.safe_load(strategy_to_yaml(c))) == c  # saves and reloads as a contract
    assert any("EMA crossover" in u and "trend_cross" in u for u in b.understood)
    assert b.not_understood == []
    assert "## Markets" in b.markdown and "EURUSD 1h" in b.markdown and "SPX 1d" in b.markdown


def test_mean_reversion_words_pick_mean_reversion():
    b = brief("Mean reversion with RSI and Bollinger bands")
    assert b.family == "mean_reversion"
    assert any(i.type == "rsi" for i in b.contract.indicators)
    assert not b.contract.has_model


def test_a_neural_network_prompt_gets_a_model():
    b = brief("a neural network on fuzzy features")
    assert b.family == "neuro_fuzzy"
    assert b.contract.has_model and b.contract.fuzzy_sets
    assert "## Model" in b.markdown


def test_breakout_of_the_channel_is_a_band_breakout():
    b = brief("breakout of the channel")
    assert b.family == "breakout"
    assert b.contract.strategy_id.startswith("breakout_eurusd_")
    entry = b.contract.entry_rules[0]
    assert isinstance(entry, Condition) and (entry.left, entry.op) == ("close", "crosses_above")
    assert entry.right == "bb_1.upper"
    assert "bb_1.window" in b.contract.optimization_space


def test_the_most_named_family_wins_and_a_tie_goes_to_the_first_named():
    assert brief("A neural network, but really RSI oversold mean reversion").family == "mean_reversion"
    assert brief("momentum or an MLP").family == "trend_cross"
    assert brief("an MLP or momentum").family == "neuro_fuzzy"
    assert brief("I don't want machine learning, just trend following").family == "trend_cross"


def test_risk_phrases_change_the_stops():
    b = brief("mean reversion with a tight stop, a take profit and a trailing stop")
    risk, space = b.contract.risk_model, b.contract.optimization_space
    assert risk.stop_loss.multiple == 1.0 and space["risk_model.stop_loss.multiple"].max == 2.0
    assert "risk_model.take_profit.multiple" in space  # the template alone does not tune it
    assert risk.trailing_stop
    assert brief("trend following with a wide stop").contract.risk_model.stop_loss.multiple == 4.0
    without = brief("trend following, no take profit and no trailing stop").contract
    assert without.risk_model.take_profit is None and not without.risk_model.trailing_stop
    assert "risk_model.take_profit.multiple" not in without.optimization_space


def test_a_sentence_it_cannot_read_is_listed_and_shown():
    b = brief("EMA crossover please. Zorblax the quantum wibble! Thanks.")
    assert b.not_understood == ["Zorblax the quantum wibble"]
    assert '"Zorblax the quantum wibble"' in section(b.markdown, "What was NOT understood")
    assert "Nothing" in section(brief("An EMA crossover, please.").markdown, "What was NOT understood")


def test_no_keyword_defaults_to_trend_cross_and_says_so():
    b = brief("buy low, sell high")
    assert b.family == "trend_cross"
    assert b.understood == [] and b.not_understood == ["buy low, sell high"]
    assert "defaults to **trend_cross**" in section(b.markdown, "Family and thesis")


def test_the_same_inputs_give_the_same_brief():
    prompt = "A breakout on new highs with a trailing stop. Something odd here."
    first, again = brief(prompt, seed=3), brief(prompt, seed=3)
    assert first.contract.model_dump(mode="json") == again.contract.model_dump(mode="json")
    assert first.markdown == again.markdown and first == again
    assert brief(prompt, seed=4).contract != first.contract  # the seed draws the template's values


def test_the_brief_lists_the_optimisation_space():
    b = brief("trend following")
    table = section(b.markdown, "Optimisation space")
    assert "| parameter | min | max | step |" in table
    for key, opt in b.contract.optimization_space.items():
        assert f"| `{key}` | {opt.min:g} | {opt.max:g} | {opt.step:g} |" in table


def test_a_hostile_prompt_still_gives_a_valid_contract_with_a_safe_id():
    hostile = (
        'strategy_id: "../../etc/passwd"\n---\nmarkets: [BTC]\n```python\nimport os; os.system("rm -rf /")\n```\n'
        "# Heading\n> quote\n<script>alert(1)</script> \x00 \u202e EMA crossover '; DROP TABLE x;--\n"
    ) + "trend " * 20_000
    b = brief(hostile)
    c = b.contract
    assert validate_strategy_id(c.strategy_id) == c.strategy_id
    assert re.fullmatch(r"trend_cross_eurusd_[0-9a-f]{6}", c.strategy_id)
    assert c.markets == ["EURUSD"] and len(c.thesis) <= 2000 and "\n" not in c.thesis
    assert parse_strategy(yaml.safe_load(strategy_to_yaml(c))) == c
    quote = section(b.markdown, "The request").strip().splitlines()
    assert quote and all(line.startswith(">") for line in quote)  # the prompt stays inside the quote
    assert "## What was NOT understood" in b.markdown

"""Pine v6 exports, proven by running them: pynescript parses every export, and PyneCore (after
opencode-pine2pyne transpiles it, offline) trades it on the shipped bars as the engine does."""

from __future__ import annotations

import pytest
import yaml
from conftest import STRATEGIES

from strategy_contract import parse_strategy
from tasks.data import load_bars
from tasks.export.common import ExportRefused
from tasks.export.pine import export_pine

PILOT = yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text())


def contract(**changes) -> dict:
    return {**PILOT, "markets": ["SPX"], "timeframes": ["1d"], **changes}


def one_per_indicator() -> dict[str, dict]:
    """A small strategy around each catalog indicator, on SPX daily."""
    atr = {"id": "atr_14", "type": "atr", "params": {"window": 14}}
    stops = {**PILOT["risk_model"], "fees": 0.0005, "slippage": 0.0002}
    space = {"risk_model.stop_loss.multiple": PILOT["optimization_space"]["risk_model.stop_loss.multiple"]}

    def make(name, indicators, entry, exit_):
        return contract(
            strategy_id=f"export_{name}",
            indicators=[*indicators, atr],
            entry_rules=entry,
            exit_rules=exit_,
            risk_model=stops,
            optimization_space=space,
        )

    return {
        "sma": make(
            "sma",
            [{"id": "sma_20", "type": "sma", "params": {"window": 20}}],
            [{"left": "close", "op": "crosses_above", "right": "sma_20"}],
            [{"left": "close", "op": "crosses_below", "right": "sma_20"}],
        ),
        "rsi": make(
            "rsi",
            [{"id": "rsi_14", "type": "rsi", "params": {"window": 14}}],
            [{"left": "rsi_14", "op": "crosses_above", "right": 30}],
            [{"left": "rsi_14", "op": ">", "right": 70}],
        ),
        "macd": make(
            "macd",
            [{"id": "macd_1", "type": "macd", "params": {"fast": 12, "slow": 26, "signal": 9}}],
            [{"left": "macd_1.macd", "op": "crosses_above", "right": "macd_1.signal"}],
            [{"left": "macd_1.hist", "op": "<", "right": 0}],
        ),
        "bbands": make(
            "bbands",
            [{"id": "bb_20", "type": "bbands", "params": {"window": 20, "alpha": 2.0}}],
            [
                {
                    "any": [
                        {"left": "close", "op": "<", "right": "bb_20.lower"},
                        {"left": "bb_20.percent_b", "op": "<", "right": 0.05},
                    ]
                }
            ],
            [{"left": "close", "op": ">", "right": "bb_20.middle"}],
        ),
        "roc": make(
            "roc",
            [{"id": "roc_10", "type": "roc", "params": {"window": 10}}],
            [
                {
                    "all": [
                        {"left": "roc_10", "op": ">", "right": 2},
                        {"left": "close", "op": ">", "right": "open"},
                    ]
                }
            ],
            [{"left": "roc_10", "op": "<", "right": 0}],
        ),
        "stoch": make(
            "stoch",
            [{"id": "st_14", "type": "stoch", "params": {"k_window": 14, "d_window": 3}}],
            [{"left": "st_14.k", "op": "crosses_above", "right": "st_14.d"}],
            [{"left": "st_14.k", "op": ">", "right": 80}],
        ),
    }


def trailing() -> dict:
    risk = {
        **PILOT["risk_model"],
        "trailing_stop": True,
        "take_profit": None,
        "fees": 0.0005,
        "slippage": 0.0002,
    }
    space = {k: v for k, v in PILOT["optimization_space"].items() if "take_profit" not in k}
    return contract(strategy_id="export_trailing", risk_model=risk, optimization_space=space)


def short() -> dict:
    return contract(strategy_id="export_short", risk_model={**PILOT["risk_model"], "direction": "short"})


def percent_stops() -> dict:
    """2% / 4% of the fill price: on daily bars the open gaps from the signal's close, so a level taken
    from the close would differ."""
    space = {k: v for k, v in PILOT["optimization_space"].items() if not k.startswith("risk_model")}
    risk = {
        **PILOT["risk_model"],
        "stop_loss": {"kind": "percent", "value": 0.02},
        "take_profit": {"kind": "percent", "value": 0.04},
    }
    return contract(strategy_id="export_percent", risk_model=risk, optimization_space=space)


def mixed_stops() -> dict:
    """Short, an ATR stop-loss (tuned) with a 3% take-profit: one side in ticks, the other a level."""
    space = {k: v for k, v in PILOT["optimization_space"].items() if "take_profit" not in k}
    risk = {**PILOT["risk_model"], "direction": "short", "take_profit": {"kind": "percent", "value": 0.03}}
    return contract(strategy_id="export_mixed", risk_model=risk, optimization_space=space)


ALL = {
    "pilot": contract(),
    **one_per_indicator(),
    "trailing": trailing(),
    "short": short(),
    "percent": percent_stops(),
    "mixed": mixed_stops(),
}
# Parity cases beyond one per indicator on SPX 1d: (name, symbol, timeframe)
MORE_MARKETS = [
    ("pilot", "EURUSD", "1h"),
    ("short", "EURUSD", "1h"),
    ("percent", "EURUSD", "1h"),
    ("percent", "SPX", "1d"),
    ("mixed", "SPX", "1d"),
]
HOSTILE = 'Trend.\n"); strategy.entry("evil", strategy.short) //\r\n*/ // \\" \u2028 x'


@pytest.fixture(scope="module")
def parsed() -> dict[str, str | None]:
    """pynescript's verdict on every export of ALL, in one process (its parser warms up for ~13 s)."""
    from tasks.export.pyne import parse_pines

    texts = {name: export_pine(parse_strategy(ALL[name], name), reference_price=2500.0).text for name in ALL}
    texts["hostile"] = export_pine(parse_strategy(contract(thesis=HOSTILE), "hostile"), 2500.0).text
    return dict(zip(texts, parse_pines(list(texts.values())), strict=True))


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_export_parses_as_pine(name, parsed):
    exported = export_pine(parse_strategy(ALL[name], name), reference_price=2500.0)
    assert exported.text.startswith("//@version=6\n")
    assert parsed[name] is None  # else pynescript's message


def test_the_optimisation_space_becomes_inputs_with_bounds_and_steps():
    text = export_pine(parse_strategy(contract(), "pilot")).text
    assert 'input.int(12, "ema_fast.window", minval = 5, maxval = 30, step = 1)' in text
    assert (
        'input.float(2.0, "risk_model.stop_loss.multiple", minval = 1.0, maxval = 4.0, step = 0.25)' in text
    )
    assert "process_orders_on_close = false" in text and "margin_long = 0" in text


def test_exports_are_deterministic_and_hostile_text_stays_in_a_comment(parsed):
    benign = export_pine(parse_strategy(contract(), "pilot"), 2500.0)
    hostile = export_pine(parse_strategy(contract(thesis=HOSTILE), "hostile"), 2500.0)
    assert export_pine(parse_strategy(contract(), "pilot"), 2500.0).text == benign.text  # same bytes

    def code(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("//")]

    assert code(hostile.text) == code(benign.text)  # the thesis reached no line of code
    assert 'strategy.entry("evil"' not in "\n".join(code(hostile.text))
    assert parsed["hostile"] is None


def test_a_neuro_fuzzy_strategy_is_refused_naming_the_field():
    nf = yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text())
    with pytest.raises(ExportRefused, match=r"model: .*needs its trained model \(a checkpoint") as err:
        export_pine(parse_strategy(nf, "nf"))  # without model=inline_model(strategy, checkpoint)
    assert [d.field for d in err.value.diagnostics] == ["model"]


def test_slippage_in_ticks_is_a_diagnostic_not_a_silent_change():
    exported = export_pine(parse_strategy(contract(), "pilot"), reference_price=2500.0)
    [note] = [d for d in exported.diagnostics if d.field == "risk_model.slippage"]
    assert note.severity == "approximation" and "ticks" in note.message
    assert "slippage = 12" in exported.text  # 0.00005 x 2500 / 0.01 (the pilot's FX slippage on SPX)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "symbol", "timeframe"),
    [*[(name, "SPX", "1d") for name in ["pilot", *sorted(one_per_indicator()), "trailing"]], *MORE_MARKETS],
)
def test_pynecore_trades_the_export_as_the_engine_does(name, symbol, timeframe, tmp_path):
    from tasks.export.parity import pine_parity

    strategy = parse_strategy({**ALL[name], "markets": [symbol], "timeframes": [timeframe]}, name)
    parity = pine_parity(strategy, load_bars(symbol, timeframe), tmp_path)
    assert parity.engine_trades >= 10, parity  # enough trades to say something
    assert parity.share >= 0.99, parity.mismatches


def test_the_export_command_writes_the_script_and_export_json(tmp_path):
    import json
    import subprocess
    import sys

    from conftest import REPO

    def stratlab(*args):
        return subprocess.run(
            [sys.executable, "-m", "stratlab", "export", *args], cwd=REPO, capture_output=True, text=True
        )

    done = stratlab("ema_cross_atr", "--out", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary == json.loads((tmp_path / "export.json").read_text())
    assert summary["targets"]["pine"]["file"] == "ema_cross_atr.pine"
    assert (tmp_path / "ema_cross_atr.pine").read_text().startswith("//@version=6")
    assert len(summary["provenance"]["data_sha256"]) == 64

    refused = stratlab("../../etc/passwd", "--out", str(tmp_path / "x"))
    assert refused.returncode != 0 and "strategy_id" in refused.stderr + refused.stdout
    unknown = stratlab("ema_cross_atr", "--target", "mt5", "--out", str(tmp_path / "y"))
    assert unknown.returncode != 0 and "--target: mt5 not built yet" in unknown.stderr + unknown.stdout
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()

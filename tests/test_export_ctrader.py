"""cTrader C# exports, proven by running them: Debian's mono-mcs compiles every export against the
stand-in cAlgo.API (C# 7.2, warnings as errors), and the stand-in's bar runner plays the shipped bars
through the cBot under mono; its closed trades must be the engine's."""

from __future__ import annotations

import shutil

import pytest
from test_export import ALL, MORE_MARKETS, contract

from strategy_contract import parse_strategy
from tasks.data import load_bars
from tasks.export.ctrader import export_ctrader

pytestmark = pytest.mark.skipif(
    not (shutil.which("mcs") and shutil.which("mono")),
    reason="needs Debian's mono-mcs (scripts/test.sh installs it when run as root)",
)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_export_compiles_against_the_calgo_stand_in(name, tmp_path):
    from tasks.export.mono import compile_csharp

    exported = export_ctrader(parse_strategy(ALL[name], name))
    assert "public class" in exported.text and ": Robot" in exported.text
    assert compile_csharp(exported.text, tmp_path).is_file()  # raises with mcs's messages when not


def test_the_optimisation_space_becomes_parameters_for_ctraders_optimizer():
    text = export_ctrader(parse_strategy(contract(), "pilot")).text
    assert '[Parameter("ema_fast.window", DefaultValue = 12, MinValue = 5, MaxValue = 30, Step = 1)]' in text
    assert "public int EmaFastWindow { get; set; }" in text
    assert (
        '[Parameter("risk_model.stop_loss.multiple", DefaultValue = 2.0, MinValue = 1.0, MaxValue = 4.0, '
        "Step = 0.25)]" in text
    )
    assert "protected override void OnBarClosed()" in text
    assert 'private const string StrategyLabel = "ema_cross_atr";' in text


def test_exports_are_deterministic_and_hostile_text_stays_in_a_comment(tmp_path):
    from tasks.export.mono import compile_csharp

    benign = export_ctrader(parse_strategy(contract(), "pilot")).text
    hostile_thesis = 'Trend.\n"; } public void Evil() { ExecuteMarketOrder(); } //\r\n/* \\" \u2028 x'
    hostile = export_ctrader(parse_strategy(contract(thesis=hostile_thesis), "hostile")).text
    assert export_ctrader(parse_strategy(contract(), "pilot")).text == benign  # the same bytes

    def code(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("//")]

    assert code(hostile) == code(benign)  # the thesis reached no line of code
    compile_csharp(hostile, tmp_path)


def test_costs_the_cbot_cannot_set_are_diagnostics_with_the_values_to_use():
    exported = export_ctrader(parse_strategy(contract(), "pilot"))
    notes = {d.field: d for d in exported.diagnostics}
    assert set(notes) == {"risk_model.fees", "risk_model.slippage"}
    assert "100.0 per million traded, per side" in notes["risk_model.fees"].message  # fees 0.0001


def test_a_model_strategy_without_its_checkpoint_is_refused_naming_the_field():
    import yaml
    from conftest import STRATEGIES

    from tasks.export.common import ExportRefused

    nf = yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text())
    with pytest.raises(ExportRefused, match="model: a neuro-fuzzy strategy needs its trained model") as err:
        export_ctrader(parse_strategy(nf, "nf"))
    assert [d.field for d in err.value.diagnostics] == ["model"]


@pytest.mark.parametrize(
    ("name", "symbol", "timeframe"),
    [*[(name, "SPX", "1d") for name in sorted(set(ALL) - {"short", "percent", "mixed"})], *MORE_MARKETS],
)
def test_the_cbot_trades_as_the_engine_does(name, symbol, timeframe, tmp_path):
    from tasks.export.parity import ctrader_parity

    strategy = parse_strategy({**ALL[name], "markets": [symbol], "timeframes": [timeframe]}, name)
    parity = ctrader_parity(strategy, load_bars(symbol, timeframe), tmp_path)
    assert parity.engine_trades >= 10, parity  # enough trades to say something
    assert parity.share >= 0.99, parity.mismatches


PEEKING_BOT = """
using cAlgo.API;
namespace cAlgo.Robots
{
    public class Peek : Robot
    {
        public bool SeeClosed = SEE_CLOSED;

        protected override void OnBarClosed()
        {
            var position = Positions.Find("peek", SymbolName);
            if (position != null)
            {
                ClosePosition(position);
                return;
            }
            Bar forming = Bars.Last(0), closed = Bars.Last(1);
            bool peeked = forming.High != forming.Open || forming.Close != forming.Open;
            bool closedBarKnown = closed.High != closed.Low;
            if (peeked || (SeeClosed && closedBarKnown))
                ExecuteMarketOrder(TradeType.Buy, SymbolName, 1, "peek", null, null, null, false);
        }
    }
}
"""


@pytest.mark.parametrize("see_closed", [False, True])
def test_a_cbot_sees_the_closed_bar_but_only_the_open_of_the_forming_one(see_closed, tmp_path):
    """The runner's own look-ahead guard: at OnBarClosed the new bar has only its open."""
    from tasks.export.mono import run_csharp

    bars = load_bars("SPX", "1d").iloc[:200]
    text = PEEKING_BOT.replace("SEE_CLOSED", "true" if see_closed else "false")
    trades = run_csharp(text, bars, "SPX", 0.01, 10_000.0, tmp_path)
    assert len(trades) == (99 if see_closed else 0)  # enter, close, enter...: 199 closes, 99 round trips
    if see_closed:  # each fills at the open of the bar after the signal
        first = trades.iloc[0]
        assert first["entry_time"] == bars.index[1] and first["entry_price"] == round(bars["open"].iloc[1], 2)

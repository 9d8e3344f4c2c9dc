"""Neuro-fuzzy exports: the shipped ``fuzzy_momentum_mlp`` contract, trained briefly on SPX daily, exported
to Pine and to cTrader C# with its memberships and MLP weights inlined, and proven by running it: the
inlined numbers give the engine's model outputs (numpy); PyneCore's run of the script plots, and the C#
runner records, the same outputs on every bar; and both trade as the engine does."""

from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import STRATEGIES

from strategy_contract import parse_strategy
from tasks.data import load_bars
from tasks.export.common import ExportRefused
from tasks.export.ctrader import MODEL_PROPERTIES, export_ctrader, fuzzy_properties
from tasks.export.model import OUTPUTS, engine_outputs, forward, inline_model
from tasks.export.pine import export_pine
from tasks.features import feature_frame
from tasks.splits import split_bounds
from tasks.train import MLP, train_model

NF = yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text())
SEED = 42
TOLERANCE = 1e-6
EXPORTERS = {"pine": lambda s, **kw: export_pine(s, 5000.0, **kw), "ctrader": export_ctrader}
needs_mono = pytest.mark.skipif(
    not (shutil.which("mcs") and shutil.which("mono")),
    reason="needs Debian's mono-mcs (scripts/test.sh installs it when run as root)",
)


def quick(**changes) -> dict:
    """The shipped contract with a short training run (5 epochs) for speed."""
    return {**NF, "model": {**NF["model"], "epochs": 5}, **changes}


@pytest.fixture(scope="module")
def trained():
    """(strategy, bars, feature frame, checkpoint bytes), trained as the research cycle trains."""
    strategy = parse_strategy(quick(), "nf")
    bars = load_bars("SPX", "1d")
    frame = feature_frame(bars, strategy)
    outcome = train_model(strategy, bars, frame, split_bounds(len(bars), strategy.data), seed=SEED)
    return strategy, bars, frame, outcome.checkpoint


@pytest.fixture(scope="module")
def engine(trained):
    strategy, _, frame, checkpoint = trained
    return engine_outputs(strategy, checkpoint, frame)


def assert_same_outputs(got: pd.DataFrame, want: pd.DataFrame) -> float:
    """Equal to TOLERANCE on every bar where defined, NaN on the same bars; the largest difference."""
    assert list(got.columns) == list(want.columns) == list(OUTPUTS)
    assert got.index.equals(want.index)
    assert (got.isna() == want.isna()).all().all(), "NaN on other bars"
    assert want["prob_up"].notna().sum() > 4000  # the comparison covers the bars, not a few
    worst = float((got - want).abs().max().max())
    assert worst <= TOLERANCE, worst
    return worst


def checkpoint_of(n_inputs: int, hidden: list[int]) -> bytes:
    """A Lightning-style checkpoint of an untrained MLP with other shapes."""
    net = MLP(n_inputs, hidden, 0.1)
    buffer = io.BytesIO()
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, buffer)
    return buffer.getvalue()


# --- fast ------------------------------------------------------------------------------------------


def test_the_inlined_model_computes_the_engines_outputs(trained, engine):
    strategy, _, frame, checkpoint = trained
    model = inline_model(strategy, checkpoint)
    assert len(model.inputs) == 8 and model.lookback == 3
    assert [len(layer.biases) for layer in model.layers] == [32, 16, 3]
    assert_same_outputs(forward(model, frame), engine)


def test_the_weights_are_written_so_they_read_back_exactly(trained):
    strategy, _, _, checkpoint = trained
    model = inline_model(strategy, checkpoint)
    text = export_pine(strategy, model=model).text
    unit = re.search(r"^    h1_0 = math\.max\(0\.0, (.*?)\)$", text, re.M | re.S).group(1)
    first = unit.replace("\n      ", " ").split(" ")  # continuation lines: one per lag
    assert unit.count("\n") == 3
    numbers, inputs = [float(first[0])], []  # bias, then "+ w * x0", "- w * x1", ...
    for sign, value, times, name in zip(*[iter(first[1:])] * 4, strict=True):
        assert sign in "+-" and times == "*"
        numbers.append(-float(value) if sign == "-" else float(value))
        inputs.append(name)
    assert inputs == [f"x{i}" for i in range(24)]
    assert numbers == [model.layers[0].biases[0], *model.layers[0].weights[0]]
    state = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)["state_dict"]
    assert numbers[1:] == state["net.layers.0.weight"][0].double().tolist()  # float32, exactly
    assert f"sha256 {model.checkpoint_sha256}" in text


def test_the_csharp_weights_are_written_so_they_read_back_exactly(trained):
    strategy, _, _, checkpoint = trained
    model = inline_model(strategy, checkpoint)
    text = export_ctrader(strategy, model=model).text
    block = re.search(r"double\[,\] Layer1Weights =\n\s*\{\n\s*\{\n(.*?)\n\s*\},", text, re.S).group(1)
    lines = block.splitlines()
    assert len(lines) == 3  # one line of 8 memberships per lag
    state = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)["state_dict"]
    numbers = [float(x) for x in " ".join(lines).replace(",", " ").split()]
    assert numbers == state["net.layers.0.weight"][0].double().tolist()  # float32, exactly
    biases = re.search(r"double\[\] Layer3Biases =\n\s*\{\n\s*(.*?),\n", text).group(1)
    last = max((k for k in state if k.endswith(".bias")), key=lambda k: int(k.split(".")[2]))
    assert [float(x) for x in biases.split(", ")] == state[last].double().tolist()
    assert f"sha256 {model.checkpoint_sha256}" in text


@pytest.mark.parametrize("target", sorted(EXPORTERS))
def test_the_export_is_byte_identical_when_exported_twice(trained, target):
    strategy, _, _, checkpoint = trained
    once = EXPORTERS[target](strategy, model=inline_model(strategy, checkpoint))
    twice = EXPORTERS[target](strategy, model=inline_model(strategy, checkpoint))
    assert once.text.encode() == twice.text.encode()
    assert [d.field for d in once.diagnostics if d.field == "model"] == ["model"]  # float64 vs float32


def test_the_exports_parse_as_pine(trained):
    from tasks.export.pyne import parse_pines

    strategy, _, _, checkpoint = trained
    neural = export_pine(strategy, 5000.0, model=inline_model(strategy, checkpoint)).text
    fuzzy = export_pine(parse_strategy(fuzzy_only(), "fz"), 5000.0).text
    assert parse_pines([neural, fuzzy]) == [None, None]  # else pynescript's messages


def test_a_checkpoint_of_other_shapes_is_refused_naming_the_mismatch(trained):
    strategy = trained[0]
    with pytest.raises(
        ValueError, match=r"hidden layers \[64, 16\]; the contract's model.hidden_layers is \[32, 16\]"
    ):
        inline_model(strategy, checkpoint_of(24, [64, 16]))
    with pytest.raises(ValueError, match=r"hidden layers \[32\]; .* is \[32, 16\]"):
        inline_model(strategy, checkpoint_of(24, [32]))
    with pytest.raises(
        ValueError, match=r"takes 16 inputs; the contract gives 24 \(8 fuzzy sets x model.lookback 3\)"
    ):
        inline_model(strategy, checkpoint_of(16, [32, 16]))
    with pytest.raises(ValueError, match="checkpoint: not a Lightning checkpoint"):
        inline_model(strategy, b"not a checkpoint")


@pytest.mark.parametrize("target", sorted(EXPORTERS))
def test_a_model_strategy_without_its_checkpoint_is_refused_naming_model(trained, target):
    strategy, _, _, checkpoint = trained
    export = EXPORTERS[target]
    with pytest.raises(ExportRefused, match=r"model: .*trained model \(a checkpoint") as err:
        export(strategy)
    assert [d.field for d in err.value.diagnostics] == ["model"]
    other = parse_strategy(quick(model={**NF["model"], "lookback": 2}), "nf2")
    with pytest.raises(ExportRefused, match="model: the inlined model's inputs"):
        export(other, model=inline_model(strategy, checkpoint))  # another contract's model


def test_fuzzy_memberships_are_usable_by_rules_without_a_model():
    text = export_pine(parse_strategy(fuzzy_only(), "fz"), 5000.0).text
    assert "fz_rsi_14__oversold = fuzzyTrapezoid(i_rsi_14, 0.0, 0.0, 25.0, 40.0)  // " in text
    assert "fz_roc_6__rising = fuzzyGaussian(i_roc_6, 0.3, 0.15)  // fuzzy.roc_6.rising, gaussian" in text
    assert "entrySignal = (fz_rsi_14__oversold > 0.5) and (fz_roc_6__rising < 0.2)" in text
    assert "model_" not in text and "plot(" not in text


def fuzzy_only() -> dict:
    """The shipped contract's indicators and memberships, with rules on the degrees and no model."""
    steps = {  # vertical sides: both (a crisp interval), the left one, the right one
        "crisp_low": {"shape": "trapezoidal", "points": [0, 0, 35, 35]},
        "jump": {"shape": "triangular", "points": [0.5, 0.5, 2.0]},
        "drop": {"shape": "triangular", "points": [-2.0, -0.5, -0.5]},
    }
    sets = {**NF["fuzzy_sets"], "rsi_14": {**NF["fuzzy_sets"]["rsi_14"], "crisp_low": steps["crisp_low"]}}
    sets["roc_6"] = {**sets["roc_6"], "jump": steps["jump"], "drop": steps["drop"]}
    return {
        **{k: v for k, v in NF.items() if k != "model"},
        "fuzzy_sets": sets,
        "strategy_id": "fuzzy_rules",
        "entry_rules": [
            {"left": "fuzzy.rsi_14.oversold", "op": ">", "right": 0.5},
            {"left": "fuzzy.roc_6.rising", "op": "<", "right": 0.2},
        ],
        "exit_rules": [{"left": "fuzzy.rsi_14.overbought", "op": ">", "right": 0.3}],
    }


# --- slow: PyneCore runs the exports ----------------------------------------------------------------


def plotting_degrees(script: str) -> tuple[str, list[str]]:
    """The script with a plot of each membership degree added (lines "fz_x__y = ...  // fuzzy.x.y,
    shape" of the export), and the references plotted."""
    degrees = dict(re.findall(r"^(fz_\w+) = fuzzy\w+\(.*  // (fuzzy\.\S+), \w+$", script, re.M))
    plots = "".join(f'plot({var}, "{ref}", display = display.data_window)\n' for var, ref in degrees.items())
    return script + plots, list(degrees.values())


def assert_same_degrees(plotted: pd.DataFrame, frame: pd.DataFrame) -> None:
    """Equal on every bar, na on the same bars (to 1e-6: PyneCore keeps its bars as float32 in its
    .ohlcv file, so its indicators, and the degrees, differ from the engine's by about 1e-7)."""
    assert sorted(plotted.columns) == sorted(c for c in frame.columns if c.startswith("fuzzy."))
    engine = frame[plotted.columns]
    assert (plotted.isna() == engine.isna()).all().all(), "memberships: na on other bars"
    assert float((plotted - engine).abs().max().max()) <= TOLERANCE


@pytest.mark.slow
def test_pynecore_plots_the_engines_model_outputs_on_every_bar(trained, engine, tmp_path):
    from tasks.export.pyne import run_pine

    strategy, bars, frame, checkpoint = trained
    script, degrees = plotting_degrees(export_pine(strategy, model=inline_model(strategy, checkpoint)).text)
    titles = [f"model.{name}" for name in OUTPUTS]
    trades, plotted = run_pine(script, bars, "SPX", 0.01, tmp_path, outputs=[*titles, *degrees])
    assert_same_degrees(plotted[degrees], frame)
    outputs = plotted[titles].rename(columns=lambda t: t.removeprefix("model."))
    worst = assert_same_outputs(outputs, engine)
    print(f"max abs difference of the model outputs, PyneCore vs engine: {worst:.3g}")
    assert len(trades) > 0


@pytest.mark.slow
def test_pynecore_computes_every_membership_shape_as_the_engine_does(tmp_path):
    """Ramps, and the steps of vertical sides (b == a, d == c), which must stay na before the source."""
    from tasks.export.pyne import run_pine

    strategy = parse_strategy(fuzzy_only(), "fz")
    bars = load_bars("SPX", "1d")
    script, degrees = plotting_degrees(export_pine(strategy).text)
    _, plotted = run_pine(script, bars, "SPX", 0.01, tmp_path, outputs=degrees)
    assert_same_degrees(plotted, feature_frame(bars, strategy))


@pytest.mark.slow
def test_pynecore_trades_the_neuro_fuzzy_export_as_the_engine_does(trained, tmp_path):
    from tasks.export.parity import pine_parity

    strategy, bars, _, checkpoint = trained  # the shipped thresholds (0.55) give enough trades here
    parity = pine_parity(strategy, bars, tmp_path, checkpoint=checkpoint)
    print(f"trade parity: {parity.identical}/{parity.engine_trades} engine, {parity.target_trades} Pine")
    assert parity.engine_trades >= 10, parity
    assert parity.share >= 0.99, parity.mismatches


@pytest.mark.slow
def test_pynecore_trades_fuzzy_rules_as_the_engine_does(tmp_path):
    from tasks.export.parity import pine_parity

    parity = pine_parity(parse_strategy(fuzzy_only(), "fz"), load_bars("SPX", "1d"), tmp_path)
    assert parity.engine_trades >= 10, parity
    assert parity.share >= 0.99, parity.mismatches


# --- the C# runner (mono) runs the exports ----------------------------------------------------------


def recorded(values: pd.DataFrame, properties: dict[str, str]) -> pd.DataFrame:
    """The runner's columns of ``properties`` (reference -> C# property), named by reference, without the
    last bar (it never closes, so the cBot never reads it)."""
    return values[list(properties.values())].set_axis(list(properties), axis=1).iloc[:-1]


@needs_mono
def test_the_csharp_export_computes_the_engines_model_outputs_on_every_bar(trained, engine, tmp_path):
    from tasks.export.mono import run_csharp

    strategy, bars, frame, checkpoint = trained
    text = export_ctrader(strategy, model=inline_model(strategy, checkpoint)).text
    trades, values = run_csharp(text, bars, "SPX", 0.01, 10_000.0, tmp_path, values=True)
    fuzzy = fuzzy_properties(strategy)
    assert_same_degrees(recorded(values, fuzzy), frame.iloc[:-1])
    outputs = recorded(values, MODEL_PROPERTIES).rename(columns=lambda t: t.removeprefix("model."))
    worst = assert_same_outputs(outputs, engine.iloc[:-1])
    print(f"max abs difference of the model outputs, C# vs engine: {worst:.3g}")
    assert len(trades) > 0


@needs_mono
def test_the_csharp_export_computes_every_membership_shape_as_the_engine_does(tmp_path):
    from tasks.export.mono import run_csharp

    strategy = parse_strategy(fuzzy_only(), "fz")
    bars = load_bars("SPX", "1d")
    _, values = run_csharp(export_ctrader(strategy).text, bars, "SPX", 0.01, 10_000.0, tmp_path, values=True)
    assert_same_degrees(recorded(values, fuzzy_properties(strategy)), feature_frame(bars, strategy).iloc[:-1])


@needs_mono
def test_the_csharp_export_trades_the_neuro_fuzzy_strategy_as_the_engine_does(trained, tmp_path):
    from tasks.export.parity import ctrader_parity

    strategy, bars, _, checkpoint = trained
    parity = ctrader_parity(strategy, bars, tmp_path, checkpoint=checkpoint)
    print(f"trade parity: {parity.identical}/{parity.engine_trades} engine, {parity.target_trades} C#")
    assert parity.engine_trades >= 10, parity
    assert parity.share >= 0.99, parity.mismatches


@needs_mono
def test_the_csharp_export_trades_fuzzy_rules_as_the_engine_does(tmp_path):
    from tasks.export.parity import ctrader_parity

    parity = ctrader_parity(parse_strategy(fuzzy_only(), "fz"), load_bars("SPX", "1d"), tmp_path)
    assert parity.engine_trades >= 10, parity
    assert parity.share >= 0.99, parity.mismatches


def test_engine_trades_of_a_model_strategy_need_its_outputs(trained, engine):
    from tasks.export.parity import engine_trades

    strategy, bars, _, _ = trained
    with pytest.raises(ValueError, match="model: the engine's trades of a neuro-fuzzy strategy need"):
        engine_trades(strategy, bars)
    trades = engine_trades(strategy, bars, engine)
    assert len(trades) >= 10
    assert np.isfinite(trades["pnl"]).all()

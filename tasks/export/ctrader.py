"""A contract as a cTrader Automate cBot (C# 7, one file) that trades as the engine does.

How the engine's semantics map to cTrader (each difference that remains is a diagnostic, never silent):

- ``OnBarClosed`` runs when a new bar opens, for the bar that just closed (``Bars.Last(1)``): the rules
  are read at that close and the market order fills at the current price, the new bar's open.
- The optimisation space becomes ``[Parameter]`` properties with the contract's value, bounds and step,
  so cTrader's optimizer can vary them.
- Indicators: cTrader's ``SimpleMovingAverage`` where its definition is Pine's; the others are carried in
  the file with TradingView's definitions (``tasks/export/csharp_indicators.py`` says why).
- Stops: ``ExecuteMarketOrder`` with the stop-loss and take-profit in pips from the fill (an ATR stop is
  ``multiple x ATR`` of the signal bar, as in the engine); a percent stop is set from the fill price
  right after the fill (``ModifyStopLossPrice``); a trailing stop is cTrader's ``hasTrailingStop``.
- The label (the strategy_id) tells this cBot's position from others on the account.
- Costs: commission and slippage are the broker's in cTrader, not the cBot's; diagnostics give the
  contract's values to enter in the backtester.
- Fuzzy memberships (``fuzzy.<source>.<set>``) are public properties (``FuzzyRsi14Oversold``) computed
  by ``FuzzyTrapezoid`` / ``FuzzyGaussian`` with the contract's definition: a vertical side is a step, a
  degree is NaN while its source is.
- A model (``model.prob_up`` / ...) needs the trained checkpoint, inlined (``tasks/export/model.py``): the
  weights are ``static readonly`` arrays, written so the float32 values read back exactly; the input
  vector keeps the memberships of the last ``lookback`` bars (newest first), and ``Dense`` (ReLU between
  layers) and a softmax give ``ModelProbDown`` / ``ModelProbFlat`` / ``ModelProbUp`` / ``ModelSignal``,
  NaN until every input is defined. These are public properties, which is how the stand-in's runner
  records them bar by bar for ``tests/test_export_neural.py``.
"""

from __future__ import annotations

import re

from strategy_contract.catalog import CATALOG
from strategy_contract.models import (
    AllOf,
    ATRStop,
    Condition,
    Gaussian,
    PercentStop,
    Rule,
    Strategy,
    Trapezoidal,
    Triangular,
)
from tasks.export.common import (
    Export,
    TargetWriter,
    contract_hash,
    exact_number,
    fixed_param,
    identifier,
    number,
    one_line,
    string_literal,
)
from tasks.export.csharp_indicators import CLASSES, NEEDS
from tasks.export.model import InlinedModel, fuzzy_inputs

TARGET = "ctrader"
PRICE = ("open", "high", "low", "close", "volume")
INDENT = "        "

# The engine's crosses (tasks/backtest/signals.py): one side of the line at the bar before, the other side
# now, both bars defined (a comparison with NaN is false in C# as in numpy).
CROSSES = [
    "",
    "private static bool CrossesAbove(double value, double line, double valueBefore, double lineBefore)",
    "{",
    "    bool defined = !double.IsNaN(valueBefore) && !double.IsNaN(lineBefore);",
    "    return value > line && !(valueBefore > lineBefore) && defined;",
    "}",
    "",
    "private static bool CrossesBelow(double value, double line, double valueBefore, double lineBefore)",
    "{",
    "    return !(value > line) && valueBefore > lineBefore && !double.IsNaN(value) && !double.IsNaN(line);",
    "}",
]


def export_ctrader(strategy: Strategy, model: InlinedModel | None = None) -> Export:
    """The cBot of ``strategy``. ``model`` (``tasks.export.model.inline_model`` of the trained checkpoint)
    is required for a neuro-fuzzy strategy, whose weights the file inlines."""
    writer = _CSharpWriter(strategy, model)
    text = writer.source()
    return Export(
        target=TARGET, filename=f"{strategy.strategy_id}.cs", text=text, diagnostics=writer.diagnostics
    )


def class_name(strategy_id: str) -> str:
    """``ema_cross_atr`` -> ``EmaCrossAtr`` (a strategy_id is a validated slug)."""
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", strategy_id) if part)
    return name if re.match(r"[A-Za-z_]", name) else f"Strategy{name}"


def pascal(key: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", key) if part)


def fuzzy_properties(strategy: Strategy) -> dict[str, str]:
    """``fuzzy.<source>.<set>`` -> its property in the cBot (``fuzzy.macd_1.hist.negative`` ->
    ``FuzzyMacd1HistNegative``), unique."""
    names: dict[str, str] = {}
    for i in fuzzy_inputs(strategy):
        name = "Fuzzy" + pascal(f"{i.source}_{i.name}")
        while name in names.values():
            name += "_"
        names[i.reference] = name
    return names


MODEL_PROPERTIES = {  # model.<output> -> its property in the cBot
    "model.prob_down": "ModelProbDown",
    "model.prob_flat": "ModelProbFlat",
    "model.prob_up": "ModelProbUp",
    "model.signal": "ModelSignal",
}


class _CSharpWriter(TargetWriter):
    target = TARGET

    def __init__(self, strategy: Strategy, model: InlinedModel | None):
        super().__init__(strategy, model)
        self.fuzzy = fuzzy_properties(strategy)
        self.check_model()

    # --- the file ----------------------------------------------------------------------------------

    def source(self) -> str:
        members = [
            *self.parameters(),
            "",
            f"private const string StrategyLabel = {string_literal(self.s.strategy_id)};",
            f"private const double PositionSize = {number(self.s.risk_model.position_size)};  "
            "// fraction of equity per trade",
            "",
            *self.indicator_fields(),
            *self.fuzzy_fields(),
            *self.model_fields(),
            "private int _next;  // the first bar not read yet",
            "",
            *self.on_start(),
            "",
            *self.on_bar_closed(),
            "",
            *self.read_bar(),
            "",
            *self.enter(),
            *self.model_code(),
            *CROSSES,
            *self.fuzzy_functions(),
            *self.weights(),
            *self.helper_classes(),
        ]
        body = [f"{INDENT}{line}" if line else "" for line in members]
        head = [
            f"// Strategy Lab export of {one_line(self.s.strategy_id)} v{self.s.version} "
            f"({one_line(self.s.symbol)} {one_line(self.s.timeframe)} bars)",
            f"// Thesis: {one_line(self.s.thesis, 600)}",
            f"// Contract sha256: {contract_hash(self.s)}",
            "// Generated code: edit the contract and export again rather than this file.",
            "using System;",
            "using System.Collections.Generic;",
            "using cAlgo.API;",
            "using cAlgo.API.Indicators;",
            "using cAlgo.API.Internals;",
            "",
            "namespace cAlgo.Robots",
            "{",
            "    [Robot(AccessRights = AccessRights.None, TimeZone = TimeZones.UTC)]",
            f"    public class {class_name(self.s.strategy_id)} : Robot",
            "    {",
        ]
        self.cost_notes()
        return "\n".join([*head, *body, "    }", "}"]) + "\n"

    def cost_notes(self) -> None:
        risk = self.s.risk_model
        if risk.fees > 0:
            self.note(
                "risk_model.fees",
                f"cTrader charges the broker's commission, which a cBot cannot set; to backtest as the engine "
                f"does, set the commission to {number(risk.fees * 1e6)} per million traded, per side",
            )
        if risk.slippage > 0:
            self.note(
                "risk_model.slippage",
                f"the cBot sends market orders at the current price; the engine's slippage of {risk.slippage:g} "
                "of the price per fill is not applied (cTrader's backtester fills at the recorded price)",
            )

    # --- parameters ----------------------------------------------------------------------------------

    def param_name(self, key: str) -> str:
        return pascal(key)

    def parameters(self) -> list[str]:
        names = [self.param_name(k) for k in self.s.optimization_space]
        if len(set(names)) != len(names):
            self.refuse("optimization_space", "two parameters map to the same C# name")
        out = ["// Parameters (the contract's optimisation space)"]
        for key, opt in sorted(self.s.optimization_space.items()):
            whole = self.s.param_is_whole(key)
            kind = "int" if whole else "double"
            fmt = (lambda v: str(int(v))) if whole else number
            name = self.param_name(key)
            if not opt.enabled:
                out.append(f"private const {kind} {name} = {fmt(opt.value)};  // fixed: {one_line(key)}")
                continue
            out += [
                f"[Parameter({string_literal(key)}, DefaultValue = {fmt(opt.value)}, MinValue = {fmt(opt.min)}, "
                f"MaxValue = {fmt(opt.max)}, Step = {fmt(opt.step)})]",
                f"public {kind} {name} {{ get; set; }}",
            ]
        return out

    def param(self, indicator_id: str, name: str) -> str:
        key = f"{indicator_id}.{name}"
        if key in self.s.optimization_space:
            return self.param_name(key)
        return fixed_param(self.s, indicator_id, name)

    # --- indicators ----------------------------------------------------------------------------------

    def var(self, indicator_id: str) -> str:
        """The indicator's field: ``ema_fast`` -> ``_emaFast``."""
        name = pascal(identifier(indicator_id))
        return f"_{name[:1].lower()}{name[1:]}"

    def indicator_fields(self) -> list[str]:
        out = []
        for ind in self.s.indicators:
            kind = {
                "sma": "SimpleMovingAverage",
                "ema": "Ewm",
                "rsi": "Rsi",
                "atr": "Atr",
                "macd": "Macd",
                "bbands": "Bands",
                "roc": "Roc",
                "stoch": "Stoch",
            }.get(ind.type)
            if kind is None:
                self.refuse(f"indicators.{ind.id}", f"no C# form for '{ind.type}'")
            out.append(f"private {kind} {self.var(ind.id)};  // {one_line(ind.type)}")
        refs = self.value_names()
        if refs:
            out.append(f"private double {', '.join(f'{v} = double.NaN' for v in refs)};")
        return out

    def on_start(self) -> list[str]:
        out = ["protected override void OnStart()", "{"]
        for ind in self.s.indicators:
            v = self.var(ind.id)
            p = lambda name, ind=ind: self.param(ind.id, name)  # noqa: E731
            make = {
                "sma": f"Indicators.SimpleMovingAverage(Bars.ClosePrices, {p('window') if ind.type == 'sma' else ''})",
                "ema": f"Ewm.Ema({p('window') if ind.type == 'ema' else ''})",
            }
            match ind.type:
                case "sma" | "ema":
                    out.append(f"    {v} = {make[ind.type]};")
                case "rsi" | "atr" | "roc":
                    out.append(f"    {v} = new {ind.type.capitalize()}({p('window')});")
                case "macd":
                    out.append(f"    {v} = new Macd({p('fast')}, {p('slow')}, {p('signal')});")
                case "bbands":
                    out.append(f"    {v} = new Bands({p('window')}, {p('alpha')});")
                case "stoch":
                    out.append(f"    {v} = new Stoch({p('k_window')}, {p('d_window')});")
        return [*out, "}"]

    # --- values the rules read -------------------------------------------------------------------

    def refs_in(self, rules: list[Rule]) -> list[tuple[str, bool]]:
        """(reference, used in a cross) for every reference the rules read, in order."""
        found: list[tuple[str, bool]] = []

        def walk(rule: Rule) -> None:
            if isinstance(rule, Condition):
                cross = rule.op in ("crosses_above", "crosses_below")
                for side in (rule.left, rule.right):
                    if isinstance(side, str):
                        found.append((side, cross))
            else:
                for sub in rule.all if isinstance(rule, AllOf) else rule.any:
                    walk(sub)

        for rule in rules:
            walk(rule)
        return found

    def stop_refs(self) -> list[str]:
        risk = self.s.risk_model
        return [stop.indicator for stop in (risk.stop_loss, risk.take_profit) if isinstance(stop, ATRStop)]

    def references(self) -> dict[str, bool]:
        """Every reference the cBot reads at the closed bar -> whether the bar before is needed too."""
        out: dict[str, bool] = {}
        for ref, cross in [
            *self.refs_in(self.s.entry_rules),
            *self.refs_in(self.s.exit_rules),
            *[(r, False) for r in self.stop_refs()],
        ]:
            out[ref] = out.get(ref, False) or cross
        return out

    def value_name(self, ref: str, previous: bool = False) -> str:
        base = "v" + pascal(ref.replace(".", "_"))
        return f"{base}Prev" if previous else base

    def value_names(self) -> list[str]:
        out = []
        for ref, cross in self.references().items():
            out.append(self.value_name(ref))
            if cross:
                out.append(self.value_name(ref, previous=True))
        return out

    def source_of(self, ref: str) -> str:
        """The C# expression of a reference at bar i (after the indicators have read bar i)."""
        if ref in PRICE:
            return {"volume": "Bars.TickVolumes[i]"}.get(ref, f"Bars.{ref.capitalize()}Prices[i]")
        if ref.startswith("fuzzy."):
            return self.fuzzy_expression(ref)
        if ref.startswith("model."):
            return self.model_expression(ref)
        head, _, output = ref.partition(".")
        ind = self.s.indicator(head)
        if ind is None:
            self.refuse(ref, "unknown reference")
        output = output or CATALOG[ind.type].outputs[0]
        v = self.var(ind.id)
        match ind.type:
            case "sma":
                return f"{v}.Result[i]"
            case "ema" | "rsi" | "atr" | "roc":
                return f"{v}.Value"
            case "macd":
                return f"{v}.{ {'macd': 'Line', 'signal': 'Signal', 'hist': 'Hist'}[output] }"
            case "bbands":
                return f"{v}.{pascal(output)}"
            case "stoch":
                return f"{v}.{output.upper()}"
        self.refuse(ref, "unknown reference")
        return ""

    def read_bar(self) -> list[str]:
        """Feed closed bar i to every indicator, then keep the values the rules and stops read."""
        out = [
            "/// Read closed bar i: indicators first, then the values the rules and stops use.",
            "private void Read(int i)",
            "{",
            "    double high = Bars.HighPrices[i], low = Bars.LowPrices[i], close = Bars.ClosePrices[i];",
        ]
        for ind in self.s.indicators:
            v = self.var(ind.id)
            match ind.type:
                case "ema" | "rsi" | "roc" | "macd" | "bbands":
                    out.append(f"    {v}.Next(close);")
                case "atr" | "stoch":
                    out.append(f"    {v}.Next(high, low, close);")
        out += self.model_read()
        for ref, cross in self.references().items():
            if cross:
                out.append(f"    {self.value_name(ref, True)} = {self.value_name(ref)};")
            out.append(f"    {self.value_name(ref)} = {self.source_of(ref)};")
        return [*out, "}"]

    # --- rules -----------------------------------------------------------------------------------------

    def operand(self, side: str | float, previous: bool = False) -> str:
        if isinstance(side, int | float):
            return number(side)
        return self.value_name(side, previous)

    def rule(self, rule: Rule) -> str:
        if isinstance(rule, Condition):
            left, right = self.operand(rule.left), self.operand(rule.right)
            if rule.op in ("crosses_above", "crosses_below"):
                lp, rp = self.operand(rule.left, True), self.operand(rule.right, True)
                fn = "CrossesAbove" if rule.op == "crosses_above" else "CrossesBelow"
                return f"{fn}({left}, {right}, {lp}, {rp})"
            return f"{left} {rule.op} {right}"
        parts = [self.rule(r) for r in (rule.all if isinstance(rule, AllOf) else rule.any)]
        joiner = " && " if isinstance(rule, AllOf) else " || "
        return f"({joiner.join(parts)})"

    def rules(self, rules: list[Rule], joiner: str) -> str:
        if not rules:
            return "false"
        return joiner.join(self.rule(r) for r in rules)

    def on_bar_closed(self) -> list[str]:
        return [
            "protected override void OnBarClosed()",
            "{",
            "    int closed = Bars.Count - 2;  // Bars.Last(1): the bar that just closed",
            "    for (; _next <= closed; _next++)",
            "        Read(_next);",
            "    if (closed < 0)",
            "        return;",
            "    // The rules at the close; orders fill now, at the new bar's open",
            f"    bool entrySignal = {self.rules(self.s.entry_rules, ' && ')};",
            f"    bool exitSignal = {self.rules(self.s.exit_rules, ' || ')};",
            "    var position = Positions.Find(StrategyLabel, SymbolName);",
            "    if (exitSignal && position != null)",
            "        ClosePosition(position);",
            "    if (entrySignal && !exitSignal && position == null)",
            "        Enter();",
            "}",
        ]

    # --- orders ------------------------------------------------------------------------------------------

    def stop_size(self, stop, key: str) -> str:
        size = "value" if isinstance(stop, PercentStop) else "multiple"
        tuned = f"{key}.{size}"
        return self.param_name(tuned) if tuned in self.s.optimization_space else number(getattr(stop, size))

    def enter(self) -> list[str]:
        risk = self.s.risk_model
        buy = risk.direction == "long"
        trade = "TradeType.Buy" if buy else "TradeType.Sell"
        price = "Symbol.Ask" if buy else "Symbol.Bid"
        out = [
            "/// A market order for PositionSize of the equity, with the contract's stops.",
            "private void Enter()",
            "{",
            f"    double price = {price};",
            "    double units = Account.Equity * PositionSize / price;",
            "    double volume = Symbol.NormalizeVolumeInUnits(units, RoundingMode.Down);",
            "    double? stopPips = null, takePips = null;",
        ]
        after: list[str] = []
        sign = "-" if buy else "+"
        for stop, key, pips, modify in (
            (risk.stop_loss, "risk_model.stop_loss", "stopPips", "ModifyStopLossPrice"),
            (risk.take_profit, "risk_model.take_profit", "takePips", "ModifyTakeProfitPrice"),
        ):
            if stop is None:
                continue
            size = self.stop_size(stop, key)
            if isinstance(stop, ATRStop):
                atr = self.value_name(stop.indicator)
                out += [
                    f"    if (!double.IsNaN({atr}))  // {size} x ATR of the signal bar, in pips from the fill",
                    f"        {pips} = {size} * {atr} / Symbol.PipSize;",
                ]
            else:  # a fraction of the fill price, set once the fill price is known
                level_sign = sign if pips == "stopPips" else ("+" if buy else "-")
                after.append(
                    f"    result.Position.{modify}(result.Position.EntryPrice * (1 {level_sign} {size}));"
                )
                if pips == "stopPips":
                    out.append(
                        f"    {pips} = {size} * price / Symbol.PipSize;  // replaced from the fill below"
                    )
        trailing = "true" if risk.trailing_stop and risk.stop_loss is not None else "false"
        call = f'{trade}, SymbolName, volume, StrategyLabel, stopPips, takePips, "entry rule", {trailing}'
        out.append(f"    {'var result = ' if after else ''}ExecuteMarketOrder({call});")
        if after:
            out += ["    if (result.IsSuccessful)", "    {", *[f"    {a}" for a in after], "    }"]
        return [*out, "}"]

    # --- neuro-fuzzy ------------------------------------------------------------------------------------

    def fuzzy_expression(self, ref: str) -> str:
        return self.fuzzy[ref]

    def model_expression(self, ref: str) -> str:
        if ref not in MODEL_PROPERTIES:
            self.refuse(ref, "unknown model output")
        return MODEL_PROPERTIES[ref]

    def fuzzy_fields(self) -> list[str]:
        if not self.fuzzy:
            return []
        out = ["// Fuzzy memberships at the closed bar (0-1; NaN while the source is NaN)"]
        for ref, name in self.fuzzy.items():
            out.append(f"public double {name} {{ get; private set; }} = double.NaN;  // {one_line(ref)}")
        return [*out, ""]

    def model_fields(self) -> list[str]:
        m = self.model
        if m is None:
            return []
        sizes = [len(m.layers[0].weights[0]), *[len(layer.biases) for layer in m.layers]]
        return [
            f"// Model: MLP {' -> '.join(map(str, sizes))}, {m.hidden_activation} between layers, softmax over "
            f"{'/'.join(m.classes)} (weights at the end of the class)",
            "// Its outputs at the closed bar: NaN until every input is defined",
            *[
                f"public double {name} {{ get; private set; }} = double.NaN;"
                for name in MODEL_PROPERTIES.values()
            ],
            f"private const int ModelInputs = {len(m.inputs)};  // memberships per bar",
            f"private const int ModelLookback = {m.lookback};  // bars of them in the input vector, newest first",
            "private readonly double[] _modelInput = NaNs(ModelInputs * ModelLookback);",
            "",
        ]

    def model_read(self) -> list[str]:
        """The memberships of bar i, then the model on the last ``lookback`` bars of them."""
        out = []
        for i in fuzzy_inputs(self.s):
            x, fn = self.source_of(i.source), i.membership
            match fn:
                case Triangular(points=(a, b, c)):
                    call, args = "FuzzyTrapezoid", [a, b, b, c]  # a triangle: a trapezoid with one top point
                case Trapezoidal():
                    call, args = "FuzzyTrapezoid", list(fn.points)
                case Gaussian():
                    call, args = "FuzzyGaussian", [fn.mean, fn.sigma]
            numbers = ", ".join(exact_number(v) for v in args)
            out.append(f"    {self.fuzzy[i.reference]} = {call}({x}, {numbers});  // {fn.shape}")
        if self.model is not None:
            out.append("    RunModel();")
        return out

    def model_code(self) -> list[str]:
        m = self.model
        if m is None:
            return []
        shift = "ModelInputs * (ModelLookback - 1)"
        out = [
            "",
            "/// The MLP on the memberships of the last ModelLookback bars: the input vector moves one bar",
            "/// back, the newest memberships go in front, and the outputs stay NaN until every input is defined.",
            "private void RunModel()",
            "{",
            f"    Array.Copy(_modelInput, 0, _modelInput, ModelInputs, {shift});",
        ]
        for k, i in enumerate(m.inputs):
            out.append(f"    _modelInput[{k}] = {self.fuzzy[i.reference]};")
        nan = " = ".join(MODEL_PROPERTIES.values())
        out += [
            f"    {nan} = double.NaN;",
            "    foreach (double x in _modelInput)",
            "        if (double.IsNaN(x))",
            "            return;",
        ]
        x, last = "_modelInput", len(m.layers)
        for index in range(1, last):
            declare = "double[] h = " if index == 1 else "h = "
            out.append(f"    {declare}Dense({x}, Layer{index}Weights, Layer{index}Biases, true);")
            x = "h"
        out += [
            f"    double[] logits = Dense({x}, Layer{last}Weights, Layer{last}Biases, false);",
            "    double top = double.NegativeInfinity, total = 0.0;",
            "    foreach (double z in logits)",
            "        top = Math.Max(top, z);",
            "    var p = new double[logits.Length];",
            "    for (int k = 0; k < p.Length; k++)",
            "        total += p[k] = Math.Exp(logits[k] - top);",
            *[
                f"    {MODEL_PROPERTIES[f'model.prob_{c}']} = p[{k}] / total;"
                for k, c in enumerate(m.classes)
            ],
            "    // the first most probable class (argmax): +1 up, -1 down, 0 flat",
            "    ModelSignal = ModelProbDown >= ModelProbFlat && ModelProbDown >= ModelProbUp ? -1.0 "
            ": ModelProbFlat >= ModelProbUp ? 0.0 : 1.0;",
            "}",
            "",
            "private static double[] NaNs(int n)",
            "{",
            "    var xs = new double[n];",
            "    for (int k = 0; k < n; k++)",
            "        xs[k] = double.NaN;",
            "    return xs;",
            "}",
            "",
            "/// One dense layer: weights[unit, input] x input + bias, ReLU where asked.",
            "private static double[] Dense(double[] x, double[,] weights, double[] biases, bool relu)",
            "{",
            "    var y = new double[biases.Length];",
            "    for (int j = 0; j < y.Length; j++)",
            "    {",
            "        double sum = biases[j];",
            "        for (int k = 0; k < x.Length; k++)",
            "            sum += weights[j, k] * x[k];",
            "        y[j] = relu ? Math.Max(0.0, sum) : sum;",
            "    }",
            "    return y;",
            "}",
        ]
        return out

    def fuzzy_functions(self) -> list[str]:
        """The contract's membership shapes (``strategy_contract.models``), NaN in, NaN out."""
        shapes = {type(fn) for sets in self.s.fuzzy_sets.values() for fn in sets.values()}
        out = []
        if shapes & {Triangular, Trapezoidal}:
            out += [
                "",
                "/// Rises from a to b, 1 from b to c, falls to 0 at d; a vertical side (b == a, d == c) is a step.",
                "private static double FuzzyTrapezoid(double x, double a, double b, double c, double d)",
                "{",
                "    if (double.IsNaN(x))",
                "        return double.NaN;",
                "    double up = b > a ? (x - a) / (b - a) : x >= a ? 1.0 : 0.0;",
                "    double down = d > c ? (d - x) / (d - c) : x <= d ? 1.0 : 0.0;",
                "    return Math.Max(0.0, Math.Min(Math.Min(up, 1.0), down));",
                "}",
            ]
        if Gaussian in shapes:
            out += [
                "",
                "private static double FuzzyGaussian(double x, double mean, double sigma)",
                "{",
                "    double z = (x - mean) / sigma;",
                "    return Math.Exp(-0.5 * (z * z));",
                "}",
            ]
        return out

    def weights(self) -> list[str]:
        """The checkpoint's weights and biases, one array per layer; each number reads back exactly."""
        m = self.model
        if m is None:
            return []
        out = [
            "",
            f"// Weights of the checkpoint with sha256 {m.checkpoint_sha256}, float32 values written exactly",
        ]
        for index, layer in enumerate(m.layers, start=1):
            per_line = len(m.inputs) if index == 1 else 8  # the first layer: one line of inputs per lag
            out += [f"private static readonly double[,] Layer{index}Weights =", "{"]
            for row in layer.weights:
                numbers = [exact_number(w) for w in row]
                chunks = [", ".join(numbers[k : k + per_line]) for k in range(0, len(numbers), per_line)]
                out += ["    {", *[f"        {c}," for c in chunks], "    },"]
            out += ["};", f"private static readonly double[] Layer{index}Biases =", "{"]
            numbers = [exact_number(b) for b in layer.biases]
            out += [f"    {', '.join(numbers[k : k + 8])}," for k in range(0, len(numbers), 8)]
            out.append("};")
        return out

    # --- helper classes ------------------------------------------------------------------------------

    def helper_classes(self) -> list[str]:
        needed: list[str] = []
        for ind in self.s.indicators:
            for name in NEEDS.get(ind.type, ()):
                if name not in needed:
                    needed.append(name)
        out: list[str] = []
        for name in sorted(needed, key=list(CLASSES).index):
            lines = CLASSES[name].strip("\n").splitlines()
            out += ["", *[line.removeprefix(INDENT) for line in lines]]
        return out

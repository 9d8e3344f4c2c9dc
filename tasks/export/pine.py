"""A contract as a TradingView Pine Script v6 strategy that trades as the engine does.

How the engine's semantics map to Pine (each difference that remains is a diagnostic, never silent):

- Signals are computed at a bar's close and fill at the next bar's open: ``process_orders_on_close =
  false`` and market orders. An exit rule closes the position; an entry needs a flat position and no
  exit rule at the same close (the engine's "exit wins").
- Indicators are Pine's own ``ta.*`` built-ins, which the engine's catalog follows definition by
  definition (``tasks/indicators.py``).
- The optimisation space becomes ``input.int`` / ``input.float`` parameters with the contract's value,
  bounds and step, so TradingView's settings panel and strategy tester can vary them.
- Stops: ``strategy.exit`` placed with the entry, so it is live on the fill bar as in the engine, with
  ``loss`` / ``profit`` in ticks from the fill price: ``multiple x ATR`` of the signal bar, the engine's
  definition too. A trailing stop is ``trail_points = 0`` (active at once) with the stop distance as
  ``trail_offset``.
- Costs: commission in percent of the traded value, as ``risk_model.fees``; Pine's slippage is a whole
  number of ticks, so the fraction becomes ticks at a reference price (an approximation).
- Sizing: percent of equity; margin 0 so that TradingView never simulates a margin call (Pine v6's
  default of 100% margin would).
- Fuzzy memberships (``fuzzy.<source>.<set>``) are Pine variables computed by two small functions,
  ``fuzzyTrapezoid`` (a triangle is a trapezoid with one top point) and ``fuzzyGaussian``, with the
  contract's definition: a vertical side is a step, and a degree is na while its source is.
- A model (``model.prob_up`` / ``prob_flat`` / ``prob_down`` / ``signal``) needs the trained checkpoint,
  inlined (``tasks/export/model.py``): the lagged inputs are the memberships through Pine's history
  operator, and the network is unrolled, one line per unit (bias + weight * input ..., then ReLU), with
  the float32 weights written so they read back exactly; softmax gives the probabilities and ``signal``
  is the first most probable class, as in ``tasks.train.predict``. The outputs are na until every input
  is defined, and are plotted to the data window (PyneCore writes them to its plot file, which is how
  ``tests/test_export_neural.py`` checks them against the engine). The script computes in float64 where
  the engine uses float32: a diagnostic says so.
"""

from __future__ import annotations

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
    tick_size,
)
from tasks.export.model import InlinedModel, fuzzy_inputs

TARGET = "pine"
PRICE = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"}
CROSS = {"crosses_above": "ta.crossover", "crosses_below": "ta.crossunder"}


def export_pine(
    strategy: Strategy, reference_price: float | None = None, model: InlinedModel | None = None
) -> Export:
    """The Pine v6 script of ``strategy``. ``reference_price`` (a recent close) converts the slippage
    fraction to ticks; without it the script has no slippage, and a diagnostic says so. ``model`` is the
    trained model of a neuro-fuzzy strategy (``tasks.export.model.inline_model`` of its checkpoint),
    whose weights the script inlines; a strategy with a model is refused without it."""
    writer = _PineWriter(strategy, reference_price, model)
    text = writer.script()
    return Export(
        target=TARGET, filename=f"{strategy.strategy_id}.pine", text=text, diagnostics=writer.diagnostics
    )


class _PineWriter(TargetWriter):
    target = TARGET

    def __init__(self, strategy: Strategy, reference_price: float | None, model: InlinedModel | None):
        super().__init__(strategy, model)
        self.reference_price = reference_price
        self.tick = tick_size(strategy.symbol)
        self.fuzzy_vars = _fuzzy_names(strategy)
        self.check_model()

    # --- the script ------------------------------------------------------------------------------

    def script(self) -> str:
        lines = [
            "//@version=6",
            f"// Strategy Lab export of {one_line(self.s.strategy_id)} v{self.s.version} "
            f"({one_line(self.s.symbol)} {one_line(self.s.timeframe)} bars)",
            f"// Thesis: {one_line(self.s.thesis, 600)}",
            f"// Contract sha256: {contract_hash(self.s)}",
            "// Generated code: edit the contract and export again rather than this file.",
            self.header(),
            "",
            "// Parameters (the contract's optimisation space)",
            *self.inputs(),
            "",
            "// Indicators",
            *self.indicators(),
            *self.memberships(),
            *self.network(),
            "",
            "// Rules, at the bar's close; orders fill at the next bar's open",
            f"entrySignal = {self.rules(self.s.entry_rules, 'and')}",
            f"exitSignal = {self.rules(self.s.exit_rules, 'or') if self.s.exit_rules else 'false'}",
            *self.orders(),
        ]
        return "\n".join(lines) + "\n"

    def header(self) -> str:
        risk = self.s.risk_model
        slippage = 0
        if risk.slippage > 0:
            if self.reference_price:
                slippage = round(risk.slippage * self.reference_price / self.tick)
                self.note(
                    "risk_model.slippage",
                    f"{risk.slippage:g} of the price is {slippage} ticks of {self.tick:g} at the reference "
                    f"price {self.reference_price:g} (Pine's slippage is a whole number of ticks)",
                )
            else:
                self.note("risk_model.slippage", "no reference price: the script has no slippage")
        args = [
            string_literal(self.s.strategy_id),
            "overlay = true",
            f"initial_capital = {number(risk.init_cash)}",
            "default_qty_type = strategy.percent_of_equity",
            f"default_qty_value = {number(risk.position_size * 100)}",
            "commission_type = strategy.commission.percent",
            f"commission_value = {number(risk.fees * 100)}",
            f"slippage = {slippage}",
            "process_orders_on_close = false",
            "margin_long = 0",
            "margin_short = 0",
        ]
        return f"strategy({', '.join(args)})"

    def inputs(self) -> list[str]:
        out = []
        for key, opt in sorted(self.s.optimization_space.items()):
            name = self.param_var(key)
            whole = self.s.param_is_whole(key)
            if not opt.enabled:
                value = str(int(opt.value)) if whole else number(opt.value)
                out.append(f"{name} = {value}  // fixed: {key}")
                continue
            kind, fmt = ("input.int", lambda v: str(int(v))) if whole else ("input.float", number)
            out.append(
                f"{name} = {kind}({fmt(opt.value)}, {string_literal(key)}, minval = {fmt(opt.min)}, "
                f"maxval = {fmt(opt.max)}, step = {fmt(opt.step)})"
            )
        return out or ["// (none)"]

    def param_var(self, key: str) -> str:
        return f"p_{identifier(key)}"

    def param(self, indicator_id: str, name: str) -> str:
        key = f"{indicator_id}.{name}"
        if key in self.s.optimization_space:
            return self.param_var(key)
        return fixed_param(self.s, indicator_id, name)

    def indicators(self) -> list[str]:
        out = []
        for ind in self.s.indicators:
            v = f"i_{identifier(ind.id)}"
            p = lambda name, ind=ind: self.param(ind.id, name)  # noqa: E731
            match ind.type:
                case "sma" | "ema" | "rsi" | "roc":
                    out.append(f"{v} = ta.{ind.type}(close, {p('window')})")
                case "atr":
                    out.append(f"{v} = ta.atr({p('window')})")
                case "macd":
                    out.append(
                        f"[{v}_macd, {v}_signal, {v}_hist] = ta.macd(close, {p('fast')}, {p('slow')}, {p('signal')})"
                    )
                case "bbands":
                    out += [
                        f"[{v}_middle, {v}_upper, {v}_lower] = ta.bb(close, {p('window')}, {p('alpha')})",
                        f"{v}_width = {v}_upper - {v}_lower",
                        f"{v}_percent_b = {v}_width != 0 ? (close - {v}_lower) / {v}_width : na",
                        f"{v}_bandwidth = {v}_middle != 0 ? {v}_width / {v}_middle : na",
                    ]
                case "stoch":
                    out += [
                        f"{v}_k = ta.stoch(close, high, low, {p('k_window')})",
                        f"{v}_d = ta.sma({v}_k, {p('d_window')})",
                    ]
                case _:
                    self.refuse(f"indicators.{ind.id}", f"no Pine form for '{ind.type}'")
        return out

    def ref(self, ref: str | float) -> str:
        if isinstance(ref, int | float):
            return number(ref)
        if ref in PRICE:
            return PRICE[ref]
        if ref in self.fuzzy_vars:
            return self.fuzzy_vars[ref]
        if ref.startswith("model.") and self.model is not None:
            return f"model_{identifier(ref.removeprefix('model.'))}"
        head, _, output = ref.partition(".")
        ind = self.s.indicator(head)
        if ind is None:  # the contract validated its references
            self.refuse(ref, "unknown reference")
        outputs = CATALOG[ind.type].outputs
        return (
            f"i_{identifier(ind.id)}"
            if outputs == ("value",)
            else f"i_{identifier(ind.id)}_{output or outputs[0]}"
        )

    # --- fuzzy memberships and the model --------------------------------------------------------------

    def memberships(self) -> list[str]:
        """Each fuzzy set's degree (0-1, na while its source is na), as ``strategy_contract.models``
        defines it: a step where a side is vertical (b == a, d == c), a ramp otherwise."""
        if not self.s.fuzzy_sets:
            return []
        shapes = {type(fn) for sets in self.s.fuzzy_sets.values() for fn in sets.values()}
        out = ["", "// Fuzzy memberships (0-1; na while the source is na)"]
        if shapes & {Triangular, Trapezoidal}:
            out += [
                "fuzzyTrapezoid(float x, float a, float b, float c, float d) =>",
                "    float up = b > a ? (x - a) / (b - a) : x >= a ? 1.0 : 0.0",
                "    float down = d > c ? (d - x) / (d - c) : x <= d ? 1.0 : 0.0",
                "    na(x) ? na : math.max(0.0, math.min(up, 1.0, down))",
            ]
        if Gaussian in shapes:
            out += [
                "fuzzyGaussian(float x, float mean, float sigma) =>",
                "    float z = (x - mean) / sigma",
                "    na(x) ? na : math.exp(-0.5 * (z * z))",
            ]
        for i in fuzzy_inputs(self.s):
            x, fn = self.ref(i.source), i.membership
            match fn:
                case Triangular(points=(a, b, c)):
                    args = [a, b, b, c]  # a triangle is a trapezoid with one top point
                case Trapezoidal():
                    args = list(fn.points)
                case Gaussian():
                    args = [fn.mean, fn.sigma]
            call = "fuzzyGaussian" if isinstance(fn, Gaussian) else "fuzzyTrapezoid"
            numbers = ", ".join(exact_number(v) for v in args)
            out.append(
                f"{self.fuzzy_vars[i.reference]} = {call}({x}, {numbers})  // {i.reference}, {fn.shape}"
            )
        return out

    def network(self) -> list[str]:
        """The MLP with its weights inlined, one line per unit (bias, then weight x input), so the numbers
        stay next to what they multiply and no array or loop is needed."""
        m = self.model
        if m is None:
            return []
        sizes = [len(m.layers[0].weights[0]), *[len(layer.biases) for layer in m.layers]]
        out = [
            "",
            f"// Model: MLP {' -> '.join(map(str, sizes))}, {m.hidden_activation} between layers, softmax over "
            f"{'/'.join(m.classes)}",
            f"// Weights of the checkpoint with sha256 {m.checkpoint_sha256}, float32 values written exactly",
            f"// Inputs: the memberships at t ... t-{m.lookback - 1} (Pine's history operator)"
            if m.lookback > 1
            else "// Inputs: the memberships at t",
        ]
        names = []
        for lag in range(m.lookback):
            for i in m.inputs:
                name = f"x{len(names)}"
                names.append(name)
                history = f"[{lag}]" if lag else ""
                out.append(f"{name} = {self.fuzzy_vars[i.reference]}{history}  // {i.reference}@t-{lag}")
        ready = [f"not na({n})" for n in names]
        per_lag = len(m.inputs)
        out.append(  # continuation lines indented 2 (not a multiple of 4)
            "modelReady = "
            + "\n  and ".join(" and ".join(ready[i : i + per_lag]) for i in range(0, len(ready), per_lag))
        )
        outputs = [f"model_{name}" for name in ("prob_down", "prob_flat", "prob_up", "signal")]
        out += [f"float {name} = na" for name in outputs]
        out.append("if modelReady")
        for index, layer in enumerate(m.layers, start=1):
            last = index == len(m.layers)
            units = (
                [f"logit_{c}" for c in m.classes]
                if last
                else [f"h{index}_{j}" for j in range(len(layer.biases))]
            )
            out.append(
                "    // output layer: a logit per class"
                if last
                else f"    // hidden layer {index}: {len(units)} units, {m.hidden_activation}"
            )
            per_line = len(m.inputs) if index == 1 else 8  # the first layer: one line of inputs per lag
            for unit, row, bias in zip(units, layer.weights, layer.biases, strict=True):
                total = _weighted_sum(bias, row, names, per_line)
                out.append(f"    {unit} = {total}" if last else f"    {unit} = math.max(0.0, {total})")
            names = units
        logits = [f"logit_{c}" for c in m.classes]
        out += [
            "    // softmax",
            f"    float top = math.max({', '.join(logits)})",
            *[f"    float e_{c} = math.exp(logit_{c} - top)" for c in m.classes],
            f"    float total = {' + '.join(f'e_{c}' for c in m.classes)}",
            *[f"    model_prob_{c} := e_{c} / total" for c in m.classes],
            "    // the first most probable class (argmax): +1 up, -1 down, 0 flat",
            "    model_signal := model_prob_down >= model_prob_flat and model_prob_down >= model_prob_up ? -1.0 : "
            "model_prob_flat >= model_prob_up ? 0.0 : 1.0",
            "// The model's outputs, in the data window (and in PyneCore's plot file)",
            *[
                f'plot({name}, "model.{name.removeprefix("model_")}", display = display.data_window)'
                for name in outputs
            ],
        ]
        return out

    def rules(self, rules: list[Rule], joiner: str) -> str:
        parts = [self.rule(r) for r in rules]
        return parts[0] if len(parts) == 1 else f" {joiner} ".join(f"({p})" for p in parts)

    def rule(self, rule: Rule) -> str:
        if isinstance(rule, Condition):
            left, right = self.ref(rule.left), self.ref(rule.right)
            if rule.op in CROSS:
                return f"{CROSS[rule.op]}({left}, {right})"
            return f"{left} {rule.op} {right}"
        if isinstance(rule, AllOf):
            return self.rules(rule.all, "and")
        return self.rules(rule.any, "or")

    # --- orders ------------------------------------------------------------------------------------

    def size(self, stop: ATRStop | PercentStop, key: str) -> str:
        """The stop's multiple (ATR) or fraction (percent): its input when tuned, else the number."""
        size = "value" if isinstance(stop, PercentStop) else "multiple"
        tuned = f"{key}.{size}"
        return self.param_var(tuned) if tuned in self.s.optimization_space else number(getattr(stop, size))

    def distance(self, stop: ATRStop | PercentStop, key: str) -> str:
        """The stop's distance in price at the signal bar's close (the orders placed with the entry)."""
        if isinstance(stop, PercentStop):
            return f"{self.size(stop, key)} * close"
        return f"{self.size(stop, key)} * i_{identifier(stop.indicator)}"

    def orders(self) -> list[str]:
        risk = self.s.risk_model
        side = "strategy.long" if risk.direction == "long" else "strategy.short"
        brackets: list[str] = []
        ticks: list[str] = []  # stop distances in ticks, at the signal bar's close
        if risk.stop_loss is not None:
            stop = self.distance(risk.stop_loss, "risk_model.stop_loss")
            ticks.append(f"stopTicks = ({stop}) / syminfo.mintick")
            if risk.trailing_stop:
                brackets += ["trail_points = 0", "trail_offset = stopTicks"]
            else:
                brackets.append("loss = stopTicks")
        if risk.take_profit is not None:
            take = self.distance(risk.take_profit, "risk_model.take_profit")
            ticks.append(f"takeTicks = ({take}) / syminfo.mintick")
            brackets.append("profit = takeTicks")
        reissue, kept = self.percent_levels()
        out = [
            *[
                f"var float {_entry(t)} = na  // ticks from the fill, kept for the re-issued exit"
                for t in kept
            ],
            "if exitSignal and strategy.position_size != 0",
            '    strategy.close("entry", comment = "exit rule")',
            "if entrySignal and not exitSignal and strategy.position_size == 0",
            f'    strategy.entry("entry", {side})',
            *[f"    {_entry(t)} := {t}" for t in kept],
        ]
        if brackets:
            guard = " or ".join(f"not na({b.split(' = ')[1]})" for b in brackets if "Ticks" in b)
            out += [
                f"    if {guard}",
                f'        strategy.exit("stops", "entry", {", ".join(brackets)})',
            ]
        return ["", "// Orders", *ticks, *out, *reissue]

    def percent_levels(self) -> tuple[list[str], list[str]]:
        """A percent stop or take-profit is a fraction of the fill price, unknown at the signal bar: the
        exit placed with the entry uses the signal bar's close for the fill bar, and from the fill bar's
        close on it is re-issued with levels from the position's average price (the fill), as the engine
        places them. Returns the re-issue's lines and the tick distances (of an ATR side) it keeps."""
        risk = self.s.risk_model
        if risk.trailing_stop and isinstance(risk.stop_loss, PercentStop):
            self.note(
                "risk_model.stop_loss",
                "a percent trailing stop trails this fraction of the signal bar's close; the engine trails the "
                "fraction of the fill price (distances differ by the gap times the fraction)",
            )
            return [], []
        sides = [
            (risk.stop_loss, "risk_model.stop_loss", "stop", "loss", "stopTicks", -1.0),
            (risk.take_profit, "risk_model.take_profit", "limit", "profit", "takeTicks", 1.0),
        ]
        if not any(isinstance(stop, PercentStop) for stop, *_ in sides):
            return [], []
        sign = 1.0 if risk.direction == "long" else -1.0
        kept, brackets = [], []
        for stop, key, level, relative, ticks, toward in sides:
            if isinstance(stop, PercentStop):
                op = "+" if sign * toward > 0 else "-"
                brackets.append(f"{level} = strategy.position_avg_price * (1 {op} {self.size(stop, key)})")
                self.note(
                    key,
                    "on the fill bar the level is this fraction of the signal bar's close from the fill (the "
                    "fill price is not known at the signal); from the fill bar's close on it is the fraction "
                    "of the fill price, as in the engine",
                )
            elif stop is not None:
                kept.append(ticks)
                brackets.append(f"{relative} = {_entry(ticks)}")
        lines = [
            "// Percent levels from the fill price, once the position is open",
            "if strategy.position_size != 0",
            f'    strategy.exit("stops", "entry", {", ".join(brackets)})',
        ]
        return lines, kept


def _entry(ticks: str) -> str:
    """``stopTicks`` -> ``entryStopTicks``: the distance as it was when the entry was placed."""
    return f"entry{ticks[:1].upper()}{ticks[1:]}"


def _fuzzy_names(strategy: Strategy) -> dict[str, str]:
    """``fuzzy.<source>.<set>`` -> a unique Pine variable name (``fz_macd_1_hist__negative``)."""
    names: dict[str, str] = {}
    for i in fuzzy_inputs(strategy):
        name = f"fz_{identifier(i.source)}__{identifier(i.name)}"
        while name in names.values():
            name += "_"
        names[i.reference] = name
    return names


def _weighted_sum(bias: float, weights: list[float], inputs: list[str], per_line: int) -> str:
    """``bias + w0 * x0 - w1 * x1 ...`` with every number exact (a negative weight as a subtraction),
    ``per_line`` terms on each continuation line (indented 6: not a multiple of 4, as Pine wants)."""
    terms = []
    for w, x in zip(weights, inputs, strict=True):
        text = exact_number(w)
        terms.append(f"- {text[1:]} * {x}" if text.startswith("-") else f"+ {text} * {x}")
    lines = [" ".join(terms[i : i + per_line]) for i in range(0, len(terms), per_line)]
    return "".join([exact_number(bias), *(f"\n      {line}" for line in lines)])

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
"""

from __future__ import annotations

import hashlib
import json

from strategy_contract.catalog import CATALOG
from strategy_contract.models import AllOf, ATRStop, Condition, PercentStop, Rule, Strategy
from tasks.export.common import (
    Diagnostic,
    Export,
    ExportRefused,
    fixed_param,
    identifier,
    number,
    one_line,
    string_literal,
    tick_size,
)

TARGET = "pine"
PRICE = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"}
CROSS = {"crosses_above": "ta.crossover", "crosses_below": "ta.crossunder"}


def export_pine(strategy: Strategy, reference_price: float | None = None) -> Export:
    """The Pine v6 script of ``strategy``. ``reference_price`` (a recent close) converts the slippage
    fraction to ticks; without it the script has no slippage, and a diagnostic says so."""
    writer = _PineWriter(strategy, reference_price)
    text = writer.script()
    return Export(
        target=TARGET, filename=f"{strategy.strategy_id}.pine", text=text, diagnostics=writer.diagnostics
    )


class _PineWriter:
    def __init__(self, strategy: Strategy, reference_price: float | None):
        self.s = strategy
        self.reference_price = reference_price
        self.tick = tick_size(strategy.symbol)
        self.diagnostics: list[Diagnostic] = []
        self.refuse_unsupported()

    def note(self, field: str, message: str, severity: str = "approximation") -> None:
        self.diagnostics.append(Diagnostic(target=TARGET, field=field, severity=severity, message=message))

    def refuse_unsupported(self) -> None:
        if self.s.has_model or self.s.fuzzy_sets:
            self.note(
                "model" if self.s.has_model else "fuzzy_sets",
                "neuro-fuzzy strategies are not exported to Pine yet (fuzzy memberships and MLP weights "
                "would have to be inlined)",
                "refused",
            )
            raise ExportRefused(TARGET, self.diagnostics)

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
                    self.note(f"indicators.{ind.id}", f"no Pine form for '{ind.type}'", "refused")
                    raise ExportRefused(TARGET, self.diagnostics)
        return out

    def ref(self, ref: str | float) -> str:
        if isinstance(ref, int | float):
            return number(ref)
        if ref in PRICE:
            return PRICE[ref]
        head, _, output = ref.partition(".")
        ind = self.s.indicator(head)
        if ind is None:  # fuzzy.* and model.* were refused before; the contract validated the rest
            raise ExportRefused(
                TARGET,
                [
                    *self.diagnostics,
                    Diagnostic(target=TARGET, field=ref, severity="refused", message="unknown reference"),
                ],
            )
        outputs = CATALOG[ind.type].outputs
        return (
            f"i_{identifier(ind.id)}"
            if outputs == ("value",)
            else f"i_{identifier(ind.id)}_{output or outputs[0]}"
        )

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

    def distance(self, stop: ATRStop | PercentStop, key: str) -> str:
        """The stop's distance in price at the signal bar's close."""
        size = "value" if isinstance(stop, PercentStop) else "multiple"
        tuned = f"{key}.{size}"
        amount = self.param_var(tuned) if tuned in self.s.optimization_space else number(getattr(stop, size))
        if isinstance(stop, PercentStop):
            self.note(
                key,
                "a percent stop is placed at this fraction of the signal bar's close from the fill; the "
                "engine takes the fraction of the fill price (levels differ by the gap times the fraction)",
            )
            return f"{amount} * close"
        return f"{amount} * i_{identifier(stop.indicator)}"

    def orders(self) -> list[str]:
        risk = self.s.risk_model
        side = "strategy.long" if risk.direction == "long" else "strategy.short"
        out = [
            "if exitSignal and strategy.position_size != 0",
            '    strategy.close("entry", comment = "exit rule")',
            "if entrySignal and not exitSignal and strategy.position_size == 0",
            f'    strategy.entry("entry", {side})',
        ]
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
        if brackets:
            guard = " or ".join(f"not na({b.split(' = ')[1]})" for b in brackets if "Ticks" in b)
            out += [
                f"    if {guard}",
                f'        strategy.exit("stops", "entry", {", ".join(brackets)})',
            ]
        return ["", "// Orders", *ticks, *out]


def contract_hash(strategy: Strategy) -> str:
    """sha256 of the contract's canonical JSON: which contract a file was exported from."""
    data = json.dumps(strategy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()

"""The offline spec compiler of a campaign: a few sentences of what a person wants become a strategy
brief (Markdown) and a first, validated strategy contract. No network and no LLM: it maps known words
and phrases to a strategy family and risk settings, and says plainly what it did not understand, so a
person can see at a glance whether the first contract is what they asked for.

The prompt is data only. It is matched against fixed patterns, quoted in the Markdown brief and kept
(truncated, on one line) in the contract's ``thesis``; it never reaches the strategy id, a file name, a
rule or a parameter. The same prompt, markets, seed and volatility give the same brief.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from strategy_contract import parse_strategy
from strategy_contract.catalog import CATALOG
from strategy_contract.models import (
    AllOf,
    ATRStop,
    Condition,
    MLPModel,
    PercentStop,
    Rule,
    Strategy,
)
from tasks.design import FAMILIES, TEMPLATES, _atr_stops, _costs, _name, _opt

BREAKOUT = "breakout"
BRIEF_FAMILIES = (*FAMILIES, BREAKOUT)
DEFAULT_FAMILY = "trend_cross"  # the simplest family to read and to check by eye
THESIS_MAX = 2000  # Strategy.thesis max_length

# Risk phrases change the template's stops; the ranges stay inside the contract's ATR bounds (0, 20].
TIGHT_STOP = (1.0, 0.5, 2.0, 0.25)  # value, min, max, step of the stop-loss multiple of ATR
WIDE_STOP = (4.0, 3.0, 8.0, 0.5)
TAKE_PROFIT_RANGE = (1.0, 6.0, 0.25)

FAMILY_WORDS = {
    "trend_cross": "a fast moving average crossing a slow one (trend following)",
    "mean_reversion": "RSI leaving oversold inside a long up-trend (mean reversion)",
    "neuro_fuzzy": "an MLP over fuzzy states of RSI, rate of change and Bollinger %B",
    BREAKOUT: "the close breaking out above the upper Bollinger band (channel breakout)",
}

# (pattern, kind, value). Alternatives at the same position are tried in this order, so compound
# phrases ("band breakout", "EMA crossover") come before their parts. Kinds: "family" (value: the
# family), "ma" (a trend phrase that also names EMA or SMA), "risk" (value: the risk setting).
_S = r"[\s-]+"  # between the words of a phrase
_O = r"[\s-]*"  # an optional gap: "stop loss", "stop-loss", "stoploss"
_CROSS = rf"(?:{_S}cross(?:over|overs|ing|es)?)?"
_KEYWORDS: tuple[tuple[str, str, str], ...] = (
    # risk
    (rf"tight(?:er)?{_S}stop(?:{_O}loss(?:es)?)?s?", "risk", "tight_stop"),
    (rf"(?:wide|wider|loose|looser){_S}stop(?:{_O}loss(?:es)?)?s?", "risk", "wide_stop"),
    (rf"take{_O}profits?|profit{_S}targets?", "risk", "take_profit"),
    (rf"trailing(?:{_S}stop(?:{_O}loss(?:es)?)?s?)?", "risk", "trailing"),
    (rf"stop{_O}loss(?:es)?|stops?", "risk", "stop_loss"),
    # compound family phrases first
    (rf"(?:bollinger{_S})?bands?{_S}break(?:out|outs|s|ing)?(?:{_S}out)?", "family", BREAKOUT),
    (rf"(?:ema|exponential{_S}moving{_S}averages?){_CROSS}", "ma", "ema"),
    (rf"(?:sma|simple{_S}moving{_S}averages?){_CROSS}", "ma", "sma"),
    (rf"moving{_S}averages?{_CROSS}|mas?{_S}cross(?:over|overs|ing|es)?", "family", "trend_cross"),
    (rf"golden{_S}cross|death{_S}cross", "family", "trend_cross"),
    # trend_cross
    (rf"trend{_S}follow(?:ing|er|ers)?|trend(?:s|ing)?|momentum", "family", "trend_cross"),
    (r"cross(?:over|overs|ing|es)?", "family", "trend_cross"),
    # breakout
    (rf"break{_O}outs?|break(?:s|ing){_S}out|channels?|donchian", "family", BREAKOUT),
    (rf"range{_S}break(?:s|ing|outs?)?|new{_S}highs?", "family", BREAKOUT),
    # mean_reversion
    (rf"mean{_S}rever\w*|rever(?:t|ts|ting|sion|sions|sal|sals)", "family", "mean_reversion"),
    (rf"over{_O}sold|over{_O}bought|rsi", "family", "mean_reversion"),
    (rf"bollinger(?:{_S}bands?)?|bands?|stochastics?|stoch", "family", "mean_reversion"),
    # neuro_fuzzy
    (rf"neural(?:{_S}net(?:work)?s?)?|networks?|mlps?", "family", "neuro_fuzzy"),
    (rf"(?:machine|deep){_S}learning|fuzzy(?:{_S}logic)?|models?", "family", "neuro_fuzzy"),
)
# A negation up to two words before a phrase ("no trailing stop", "without a take profit"); not across
# a comma ("no MLP, trend following" still asks for a trend).
_NEGATION = re.compile(r"\b(?:no|not|without|never|avoid|don't|dont|nor)\b(?:[^\w,]+\w+){0,2}[^\w,]*$", re.I)
_CLAUSE_END = re.compile(r"[.;!?]+(?=\s|$)|[;!?]|\n")
_TIMEFRAME = r"[1-9][0-9]{0,2}\s?(?:m|min|h|hr|d)|hourly|daily|intraday|minutes?|hours?"
# Words that carry no strategy meaning: a clause made only of these is neither understood nor flagged.
_FILLER_WORDS = """i i'd i'm id im we we'd me my our you your it its it's this that these those there here
    want wants wanted would like love need needs please thanks thank hi hello ok okay so just also maybe
    a an the some any something anything one kind sort type of to for on in at by with and or but as
    from into about over under than then when if while is are be been being was were will should could
    can do does make build create design find give get try test run use using uses used based go goes
    strategy strategies system idea approach setup trade trades trading trader buy buys buying sell
    sells selling long short only enter entry entries exit exits signal signals market markets price
    prices simple good robust profitable better best new let let's lets work works what which how
    very more less really"""
_FILLER = frozenset(_FILLER_WORDS.split())


@dataclass(frozen=True)
class Brief:
    """What a prompt compiled into: the contract a campaign starts from and the brief a person checks it
    against. ``understood`` and ``not_understood`` make the mapping auditable instead of silent."""

    family: str  # one of tasks.design.FAMILIES, or "breakout"
    contract: Strategy  # validated; markets=[first market symbol], timeframes=[its timeframe]
    markdown: str  # the brief a person reads
    understood: list[str]  # "'EMA crossover' -> trend_cross family", one per distinct phrase
    not_understood: list[str]  # clauses of the prompt that matched nothing the compiler knows


@dataclass(frozen=True)
class _Hit:
    text: str  # as written in the prompt
    kind: str  # "family", "ma", "risk", "market", "timeframe"
    value: str
    negated: bool


def compile_brief(prompt: str, markets: list[tuple[str, str]], seed: int, volatility: float) -> Brief:
    """Compile `prompt` into a brief for `markets` (already validated (symbol, timeframe) pairs; the
    first is the contract's market). `volatility` is the median absolute one-bar return of that market's
    in-sample data (``tasks.data.median_abs_return``); it scales the neuro-fuzzy template's thresholds."""
    if not markets:
        raise ValueError("markets: give at least one (symbol, timeframe)")
    if not (isinstance(volatility, int | float) and math.isfinite(volatility) and volatility > 0):
        raise ValueError(f"volatility: {volatility!r} must be a positive number (a typical one-bar move)")
    symbol, timeframe = markets[0]

    keywords = _keyword_regex(markets)
    hits_by_clause = [(clause, _scan(clause, keywords)) for clause in _clauses(prompt)]
    hits = [hit for _, clause_hits in hits_by_clause for hit in clause_hits]
    not_understood = _dedupe(
        clause for clause, clause_hits in hits_by_clause if not clause_hits and not _is_filler(clause)
    )

    family, defaulted = _choose_family(hits)
    rng = random.Random(f"{seed}:brief:{symbol}:{timeframe}")
    data = _template(family, rng, symbol, timeframe, volatility)
    understood = _apply(hits, family, data, markets)
    reason = data["thesis"]
    data["thesis"] = _thesis(reason, prompt)
    data["strategy_id"] = _name(family, symbol, data)
    contract = parse_strategy(data, source=f"campaign brief (seed {seed})")
    markdown = _markdown(prompt, family, defaulted, reason, contract, understood, not_understood, markets)
    return Brief(family, contract, markdown, understood, not_understood)


# --- reading the prompt ---------------------------------------------------------------------------


def _clauses(prompt: str) -> list[str]:
    """Sentences and clauses (split on . ; ! ? and newlines; a '.' inside '1.5' or 'e.g' stays)."""
    return [c.strip() for c in _CLAUSE_END.split(prompt) if c.strip()]


def _keyword_regex(markets: list[tuple[str, str]]) -> re.Pattern[str]:
    symbols = sorted({s for s, _ in markets}, key=len, reverse=True)
    market = "|".join(_symbol_pattern(s) for s in symbols)
    parts = [rf"(?P<market>{market})", rf"(?P<timeframe>{_TIMEFRAME})"]
    parts += [f"(?P<k{i}>{pattern})" for i, (pattern, _, _) in enumerate(_KEYWORDS)]
    return re.compile(r"(?<![\w])(?:" + "|".join(parts) + r")(?![\w])", re.IGNORECASE)


def _symbol_pattern(symbol: str) -> str:
    """A symbol as a person may write it: 'EURUSD' also as 'EUR/USD' or 'EUR USD'."""
    if len(symbol) == 6 and symbol.isalpha():
        return rf"{re.escape(symbol[:3])}[/ _-]?{re.escape(symbol[3:])}"
    return re.escape(symbol)


def _scan(clause: str, keywords: re.Pattern[str]) -> list[_Hit]:
    hits = []
    for match in keywords.finditer(clause):
        group = match.lastgroup or ""
        if group in ("market", "timeframe"):
            kind, value = group, match.group().upper() if group == "market" else match.group().lower()
        else:
            _, kind, value = _KEYWORDS[int(group[1:])]
        negated = bool(_NEGATION.search(clause[max(0, match.start() - 60) : match.start()]))
        hits.append(_Hit(" ".join(match.group().split()), kind, value, negated))
    return hits


def _is_filler(clause: str) -> bool:
    return all(word in _FILLER for word in re.findall(r"[a-z0-9']+", clause.lower().replace("’", "'")))


def _family_of(hit: _Hit) -> str | None:
    if hit.kind == "family":
        return hit.value
    return "trend_cross" if hit.kind == "ma" else None


def _choose_family(hits: list[_Hit]) -> tuple[str, bool]:
    """Most matches wins; a tie goes to the family named first. None named: the default."""
    counts: dict[str, int] = {}
    for hit in hits:
        family = _family_of(hit)
        if family is not None and not hit.negated:
            counts[family] = counts.get(family, 0) + 1  # dicts keep first-appearance order
    if not counts:
        return DEFAULT_FAMILY, True
    return max(counts, key=lambda f: counts[f]), False  # max keeps the first of equal counts


def _dedupe(items) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


# --- the contract ---------------------------------------------------------------------------------


def fresh_contract(family: str, symbol: str, timeframe: str, seed: int, volatility: float) -> Strategy:
    """A new contract of ``family`` from its template: what the critic switches to when a family stalls."""
    rng = random.Random(f"{seed}:fresh:{family}:{symbol}:{timeframe}")
    data = _template(family, rng, symbol, timeframe, volatility)
    data["strategy_id"] = _name(family, symbol, data)
    return parse_strategy(data, source=f"campaign critic, fresh {family} design (seed {seed})")


def _template(family: str, rng: random.Random, symbol: str, timeframe: str, volatility: float) -> dict:
    build = breakout if family == BREAKOUT else TEMPLATES[family]
    return build(rng, symbol, timeframe, volatility)


def breakout(rng: random.Random, symbol: str, timeframe: str, volatility: float) -> dict:
    """Channel breakout with the catalog's only channel, Bollinger Bands: enter when the close crosses
    above the upper band, leave when it falls back below the middle; ATR stops cap losses."""
    window, alpha = rng.randint(15, 60), rng.choice((1.5, 2.0, 2.5))
    sl, tp = _atr_stops(rng)
    return {
        "thesis": f"When {symbol} closes above its upper Bollinger band it has broken out of its recent "
        "range and tends to keep going; falling back below the middle band ends the move, ATR stops cap losses.",
        "markets": [symbol],
        "timeframes": [timeframe],
        "indicators": [
            {"id": "bb_1", "type": "bbands", "params": {"window": window, "alpha": alpha}},
            {"id": "atr_14", "type": "atr", "params": {"window": 14}},
        ],
        "entry_rules": [{"left": "close", "op": "crosses_above", "right": "bb_1.upper"}],
        "exit_rules": [{"left": "close", "op": "crosses_below", "right": "bb_1.middle"}],
        "risk_model": {
            "stop_loss": {"kind": "atr", "indicator": "atr_14", "multiple": sl},
            "take_profit": {"kind": "atr", "indicator": "atr_14", "multiple": tp},
            **_costs(symbol),
        },
        "optimization_space": {
            "bb_1.window": _opt(window, 10, 100, 1),
            "bb_1.alpha": _opt(alpha, 1.0, 3.5, 0.25),
            "risk_model.stop_loss.multiple": _opt(sl, 1.0, 4.0, 0.25),
            "risk_model.take_profit.multiple": _opt(tp, 1.0, 6.0, 0.25),
        },
    }


def _apply(hits: list[_Hit], family: str, data: dict, markets: list[tuple[str, str]]) -> list[str]:
    """Apply what the contract supports (MA type, stops) to the template and say what each phrase did."""
    entries: list[str] = []
    risk = data["risk_model"]
    space = data["optimization_space"]
    risks = {h.value for h in hits if h.kind == "risk" and not h.negated}
    conflict = {"tight_stop", "wide_stop"} <= risks
    ma_named = {h.value for h in hits if h.kind == "ma" and not h.negated}
    ma_choice = next(iter(ma_named)) if len(ma_named) == 1 and family == "trend_cross" else None
    if ma_choice is not None:
        for ind in data["indicators"]:
            if ind["id"] in ("ma_fast", "ma_slow"):
                ind["type"] = ma_choice
        data["thesis"] = re.sub(r"\b(EMA|SMA)\b", ma_choice.upper(), data["thesis"])
    symbols = {s for s, _ in markets}
    timeframes = {t for _, t in markets}

    for hit in hits:
        phrase = f"'{hit.text}'"
        if hit.kind == "market":
            bare = re.sub(r"[^A-Z0-9]", "", hit.value)
            name = next((s for s in symbols if re.sub(r"[^A-Z0-9]", "", s) == bare), hit.value)
            entries.append(f"{phrase} -> market {name} (in this campaign's markets)")
        elif hit.kind == "timeframe":
            known = hit.value.replace(" ", "") in timeframes
            where = "in this campaign's markets" if known else "the campaign's market list decides what runs"
            entries.append(f"{phrase} -> timeframe ({where})")
        elif hit.kind in ("family", "ma"):
            target = _family_of(hit)
            if hit.negated:
                entries.append(f"{phrase} (negated) -> not counted for the {target} family")
            elif hit.kind == "ma" and ma_choice is not None:
                entries.append(f"{phrase} -> {target} family, {ma_choice.upper()} lines")
            else:
                entries.append(f"{phrase} -> {target} family")
        else:
            entries.append(f"{phrase} -> " + _risk(hit, risk, space, conflict))
    return _dedupe(entries)


def _risk(hit: _Hit, risk: dict, space: dict, conflict: bool) -> str:
    """Apply one risk phrase to the template's risk model and optimisation space; say what it did."""
    sl_key, tp_key = "risk_model.stop_loss.multiple", "risk_model.take_profit.multiple"
    if hit.value in ("tight_stop", "wide_stop"):
        if hit.negated:
            return "ignored (negated): the template's stop loss is kept"
        if conflict:
            return "ignored: both a tight and a wide stop were asked for; the template's stop is kept"
        value, lo, hi, step = TIGHT_STOP if hit.value == "tight_stop" else WIDE_STOP
        risk["stop_loss"]["multiple"] = value
        space[sl_key] = _opt(value, lo, hi, step)
        return f"stop loss at {value:g} x ATR, tuned within [{lo:g}, {hi:g}]"
    if hit.value == "take_profit":
        if hit.negated:
            risk.pop("take_profit", None)
            space.pop(tp_key, None)
            return "no take-profit: the exit rules and the stop loss close trades"
        if risk.get("take_profit") is None:
            return "not applied: a take-profit was ruled out elsewhere in the prompt"
        lo, hi, step = TAKE_PROFIT_RANGE
        value = risk["take_profit"]["multiple"]
        space.setdefault(tp_key, _opt(value, lo, hi, step))
        return f"ATR take-profit at {value:g} x ATR, tuned within [{lo:g}, {hi:g}]"
    if hit.value == "trailing":
        risk["trailing_stop"] = not hit.negated
        return "no trailing stop" if hit.negated else "trailing stop loss (follows the best price)"
    if hit.negated:  # "no stop loss"
        return "ignored (negated): every brief keeps an ATR stop loss to cap losses"
    return "ATR stop loss (every template has one)"


def _thesis(reason: str, prompt: str) -> str:
    """The template's reason plus the request on one line, within the contract's length limit."""
    request = " ".join("".join(ch if ch.isprintable() else " " for ch in prompt).split())
    text = f'{reason} Requested: "{request}"' if request else reason
    return text if len(text) <= THESIS_MAX else text[: THESIS_MAX - 4] + '..."'


# --- the brief ------------------------------------------------------------------------------------

_OPS = {
    ">": "is above",
    ">=": "is at or above",
    "<": "is below",
    "<=": "is at or below",
    "crosses_above": "crosses above",
    "crosses_below": "crosses below",
}
_INDICATOR_NAMES = {
    "sma": "simple moving average",
    "ema": "exponential moving average",
    "rsi": "relative strength index",
    "atr": "average true range",
    "macd": "MACD",
    "bbands": "Bollinger Bands",
    "roc": "rate of change (%)",
    "stoch": "stochastic oscillator",
}
_MODEL_OUTPUTS = {
    "prob_up": "the model's probability of an up-swing",
    "prob_flat": "the model's probability of no swing",
    "prob_down": "the model's probability of a down-swing",
    "signal": "the model's predicted direction",
}


def _ref(ref: str | float, strategy: Strategy) -> str:
    if not isinstance(ref, str):
        return f"{ref:g}"
    head, _, output = ref.partition(".")
    if head == "model":
        return _MODEL_OUTPUTS.get(output, ref)
    ind = strategy.indicator(head)
    if ind is None:
        return f"the {ref}"
    output = output or CATALOG[ind.type].outputs[0]
    name = ind.type.upper() if output == "value" else f"{output.replace('_', ' ')} of {ind.type}"
    params = ", ".join(f"{v:g}" for v in ind.params.values())
    return f"{name}({params}) `{ref}`"


def _rule(rule: Rule, strategy: Strategy) -> str:
    if isinstance(rule, Condition):
        return f"{_ref(rule.left, strategy)} {_OPS[rule.op]} {_ref(rule.right, strategy)}"
    inner = "; ".join(_rule(r, strategy) for r in (rule.all if isinstance(rule, AllOf) else rule.any))
    return f"{'all' if isinstance(rule, AllOf) else 'any'} of ({inner})"


def _stop(stop: ATRStop | PercentStop | None) -> str:
    if stop is None:
        return "none"
    if isinstance(stop, ATRStop):
        return f"{stop.multiple:g} x ATR (`{stop.indicator}`)"
    return f"{stop.value:.2%} of the entry price"


def _markdown(
    prompt: str,
    family: str,
    defaulted: bool,
    reason: str,
    contract: Strategy,
    understood: list[str],
    not_understood: list[str],
    markets: list[tuple[str, str]],
) -> str:
    quoted = [f"> {line}".rstrip() for line in prompt.strip().splitlines()] or ["> (empty)"]
    lines = [f"# Strategy brief: `{contract.strategy_id}`", "", "## The request", "", *quoted, ""]
    lines += ["## What was understood", ""]
    lines += [f"- {entry}" for entry in understood] or ["Nothing."]
    lines += ["", "## What was NOT understood", ""]
    lines += [f'- "{clause}"' for clause in not_understood] or ["Nothing: every sentence was understood."]
    lines += ["", "## Family and thesis", "", f"**Family:** {family}: {FAMILY_WORDS[family]}.", ""]
    if defaulted:
        lines += [
            f"No strategy family was named, so the brief defaults to **{DEFAULT_FAMILY}**. Name one "
            "(trend, breakout, mean reversion, neural network / fuzzy) to choose another.",
            "",
        ]
    lines += [f"**Thesis:** {reason}", "", "## Indicators", ""]
    for ind in contract.indicators:
        params = ", ".join(f"{k} {v:g}" for k, v in ind.params.items())
        lines.append(f"- `{ind.id}`: {_INDICATOR_NAMES.get(ind.type, ind.type)}, {params}")
    lines += ["", "## Rules", "", "Enter long when all of these hold:", ""]
    lines += [f"- {_rule(rule, contract)}" for rule in contract.entry_rules]
    lines += ["", "Exit when any of these holds (or a stop is hit):", ""]
    lines += [f"- {_rule(rule, contract)}" for rule in contract.exit_rules] or ["- none: only the stops"]
    if isinstance(contract.model, MLPModel):
        model = contract.model
        label = model.label
        reach = getattr(label, "max_horizon", None) or getattr(label, "horizon", None)
        lines += [
            "",
            "## Model",
            "",
            f"An MLP (hidden layers {model.hidden_layers}, lookback {model.lookback} bars) reads the fuzzy "
            f"membership degrees of {', '.join(f'`{s}`' for s in contract.fuzzy_sets)} and predicts a "
            f"{label.kind} label (moves of {label.threshold:.3%} within {reach} bars).",
        ]
    rm = contract.risk_model
    lines += [
        "",
        "## Risk",
        "",
        f"- Stop loss: {_stop(rm.stop_loss)}",
        f"- Take profit: {_stop(rm.take_profit)}",
        f"- Trailing stop: {'yes' if rm.trailing_stop else 'no'}",
        f"- Costs per fill: fees {rm.fees:.4%}, slippage {rm.slippage:.4%} (the operator's floors for "
        f"{contract.symbol})",
        "",
        "## Optimisation space",
        "",
        "| parameter | min | max | step | start |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{key}` | {opt.min:g} | {opt.max:g} | {opt.step:g} | {opt.value:g} |"
        for key, opt in contract.optimization_space.items()
    ]
    lines += ["", "## Markets", ""]
    for i, (symbol, timeframe) in enumerate(markets):
        lines.append(f"- {symbol} {timeframe}" + (" (the contract's market)" if i == 0 else ""))
    return "\n".join(lines) + "\n"

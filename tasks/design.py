"""The built-in offline designer: searches the contract space of the catalog and learns from past cycles.

An empty lab starts with a neuro-fuzzy design. After that it picks a strategy family in proportion to
how well that family did before (untried families get a fair chance), then either refines the best
past strategy inside its ``optimization_space`` or draws a fresh one. It reads the selection part of
past results only (validation for a fitted model, train + validation for rules, see ``PastCycle``): the
held-out data never chooses a candidate. The same seed and the same history give the same design.
Its costs are the operator's floors for the market's asset class (``tasks/settings.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re

from strategy_contract import parse_strategy
from strategy_contract.models import Strategy
from tasks.settings import cost_floor
from tasks.storage import PastCycle

FAMILIES = ("trend_cross", "mean_reversion", "neuro_fuzzy")
UNTRIED_SCORE = 0.5  # what an untried family is assumed to score, so exploration never stops
FAILED_SCORE = -1.0
FIRST_FAMILY = "neuro_fuzzy"  # an empty lab starts with the product's core: indicators -> fuzzy -> MLP


def family_of(strategy: Strategy) -> str:
    if strategy.has_model:
        return "neuro_fuzzy"
    return (
        "mean_reversion"
        if any(i.type in ("rsi", "bbands", "stoch") for i in strategy.indicators)
        else "trend_cross"
    )


def score(past: PastCycle) -> float:
    """Selection-part Sharpe of a finished cycle; one that failed the (selection-part) gates scores low."""
    if past.status != "completed" or past.selection_sharpe is None:
        return FAILED_SCORE
    return max(min(past.selection_sharpe, 3.0), FAILED_SCORE)


def design_offline(
    seed: int,
    history: list[tuple[PastCycle, Strategy]],
    symbol: str,
    timeframe: str,
    volatility: float,
) -> Strategy:
    """Design one strategy for `symbol`/`timeframe`; `volatility` is the median absolute one-bar return
    of the in-sample data, used to scale label thresholds and return-based fuzzy sets."""
    rng = random.Random(f"{seed}:{symbol}:{timeframe}")
    scores: dict[str, list[float]] = {f: [] for f in FAMILIES}
    for past, strategy in history:
        scores[family_of(strategy)].append(score(past))
    if not history:
        family = FIRST_FAMILY
    else:
        weights = [math.exp(max(s) if s else UNTRIED_SCORE) for s in scores.values()]
        family = rng.choices(FAMILIES, weights=weights)[0]

    same_market = [
        (p, s)
        for p, s in history
        if family_of(s) == family and s.symbol == symbol and s.timeframe == timeframe
    ]
    best = max(same_market, key=lambda ps: score(ps[0]), default=None)
    if best is not None and score(best[0]) > 0 and rng.random() < 0.6:
        data = refine(best[1], rng)
    else:
        data = TEMPLATES[family](rng, symbol, timeframe, volatility)
    data["strategy_id"] = _name(family, symbol, data)
    return parse_strategy(data, source=f"offline designer (seed {seed})")


def refine(parent: Strategy, rng: random.Random) -> dict:
    """Move one or two enabled parameters of the parent's optimisation space by a few steps."""
    tunable = [k for k, opt in parent.optimization_space.items() if opt.enabled]
    moves = {}
    for key in rng.sample(tunable, k=min(len(tunable), rng.choice((1, 2)))):
        opt = parent.optimization_space[key]
        steps = rng.choice((-3, -2, -1, 1, 2, 3))
        moves[key] = round(min(max(opt.value + steps * opt.step, opt.min), opt.max), 6)
    data = parent.with_params(moves).model_dump(mode="json", exclude_unset=True)
    data["version"] = parent.version + 1
    data["thesis"] = (parent.thesis.split(" [refined")[0] + f" [refined from {parent.strategy_id}]")[:2000]
    return data


def _name(family: str, symbol: str, data: dict) -> str:
    body = {k: v for k, v in data.items() if k not in ("strategy_id", "thesis", "version")}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:6]
    return f"{family}_{re.sub(r'[^a-z0-9]+', '_', symbol.lower())}_{digest}"


def _opt(value: float, lo: float, hi: float, step: float) -> dict:
    return {"enabled": True, "min": lo, "max": hi, "step": step, "value": value}


def _costs(symbol: str) -> dict:
    """The operator's cost floors for the symbol's asset class: a design never assumes cheaper fills."""
    fees, slippage = cost_floor(symbol)
    return {"fees": fees, "slippage": slippage}


def _atr_stops(rng: random.Random) -> tuple[float, float]:
    return rng.choice((1.5, 2.0, 2.5, 3.0)), rng.choice((2.0, 3.0, 4.0, 5.0))


def trend_cross(rng: random.Random, symbol: str, timeframe: str, volatility: float) -> dict:
    ma = rng.choice(("ema", "sma"))
    fast, slow = rng.randint(5, 30), rng.randint(35, 150)
    sl, tp = _atr_stops(rng)
    return {
        "thesis": f"Trends in {symbol} persist after a fast {ma.upper()} crosses a slow one; ATR stops cap losses.",
        "markets": [symbol],
        "timeframes": [timeframe],
        "indicators": [
            {"id": "ma_fast", "type": ma, "params": {"window": fast}},
            {"id": "ma_slow", "type": ma, "params": {"window": slow}},
            {"id": "atr_14", "type": "atr", "params": {"window": 14}},
        ],
        "entry_rules": [{"left": "ma_fast", "op": "crosses_above", "right": "ma_slow"}],
        "exit_rules": [{"left": "ma_fast", "op": "crosses_below", "right": "ma_slow"}],
        "risk_model": {
            "stop_loss": {"kind": "atr", "indicator": "atr_14", "multiple": sl},
            "take_profit": {"kind": "atr", "indicator": "atr_14", "multiple": tp},
            **_costs(symbol),
        },
        "optimization_space": {
            "ma_fast.window": _opt(fast, 3, 34, 1),
            "ma_slow.window": _opt(slow, 35, 200, 5),
            "risk_model.stop_loss.multiple": _opt(sl, 1.0, 4.0, 0.25),
            "risk_model.take_profit.multiple": _opt(tp, 1.0, 6.0, 0.25),
        },
    }


def mean_reversion(rng: random.Random, symbol: str, timeframe: str, volatility: float) -> dict:
    window, low, high = rng.randint(7, 21), rng.randint(20, 35), rng.randint(55, 75)
    trend = rng.randint(100, 200)
    sl, tp = _atr_stops(rng)
    return {
        "thesis": f"{symbol} snaps back after RSI leaves oversold while the long trend is up; ATR stops cap losses.",
        "markets": [symbol],
        "timeframes": [timeframe],
        "indicators": [
            {"id": "rsi_fast", "type": "rsi", "params": {"window": window}},
            {"id": "sma_trend", "type": "sma", "params": {"window": trend}},
            {"id": "atr_14", "type": "atr", "params": {"window": 14}},
        ],
        "entry_rules": [
            {"left": "rsi_fast", "op": "crosses_above", "right": low},
            {"left": "close", "op": ">", "right": "sma_trend"},
        ],
        "exit_rules": [{"left": "rsi_fast", "op": ">", "right": high}],
        "risk_model": {
            "stop_loss": {"kind": "atr", "indicator": "atr_14", "multiple": sl},
            "take_profit": {"kind": "atr", "indicator": "atr_14", "multiple": tp},
            **_costs(symbol),
        },
        "optimization_space": {
            "rsi_fast.window": _opt(window, 5, 30, 1),
            "sma_trend.window": _opt(trend, 50, 300, 10),
            "risk_model.stop_loss.multiple": _opt(sl, 1.0, 4.0, 0.25),
        },
    }


def neuro_fuzzy(rng: random.Random, symbol: str, timeframe: str, volatility: float) -> dict:
    swing = rng.choice((2.5, 3.0, 4.0)) * volatility  # a swing of a few typical bars
    horizon = 48
    roc_window = rng.randint(3, 12)
    roc_scale = 100 * volatility * math.sqrt(roc_window)  # roc is in percent
    rsi_window = rng.randint(7, 21)
    indicators = [
        {"id": "rsi_1", "type": "rsi", "params": {"window": rsi_window}},
        {"id": "roc_1", "type": "roc", "params": {"window": roc_window}},
        {"id": "bb_1", "type": "bbands", "params": {"window": 20, "alpha": 2.0}},
        {"id": "atr_14", "type": "atr", "params": {"window": 14}},
    ]
    fuzzy = {
        "rsi_1": {
            "low": {"shape": "trapezoidal", "points": [0, 0, 30, 45]},
            "mid": {"shape": "triangular", "points": [35, 50, 65]},
            "high": {"shape": "trapezoidal", "points": [55, 70, 100, 100]},
        },
        "roc_1": {
            "falling": {"shape": "gaussian", "mean": -roc_scale, "sigma": roc_scale / 2},
            "steady": {"shape": "gaussian", "mean": 0.0, "sigma": roc_scale / 2},
            "rising": {"shape": "gaussian", "mean": roc_scale, "sigma": roc_scale / 2},
        },
        "bb_1.percent_b": {
            "below": {"shape": "trapezoidal", "points": [-1, -1, 0.0, 0.3]},
            "inside": {"shape": "triangular", "points": [0.1, 0.5, 0.9]},
            "above": {"shape": "trapezoidal", "points": [0.7, 1.0, 2, 2]},
        },
    }
    hidden = rng.choice(([16], [32, 16], [64, 32]))
    sl, tp = _atr_stops(rng)
    return {
        "thesis": f"Fuzzy momentum and band states of {symbol} say which way its next swing of {swing:.2%} goes; "
        "an MLP learns which combinations precede up-swings.",
        "markets": [symbol],
        "timeframes": [timeframe],
        "indicators": indicators,
        "fuzzy_sets": fuzzy,
        "model": {
            "kind": "mlp",
            "hidden_layers": hidden,
            "dropout": rng.choice((0.0, 0.1, 0.2)),
            "learning_rate": rng.choice((0.001, 0.003)),
            "epochs": 40,
            "batch_size": 128,
            "patience": 6,
            "lookback": rng.randint(1, 4),
            "label": {"kind": "zigzag", "threshold": round(max(swing, 1e-4), 5), "max_horizon": horizon},
        },
        "entry_rules": [{"left": "model.prob_up", "op": ">", "right": 0.55}],
        "exit_rules": [{"left": "model.prob_down", "op": ">", "right": 0.55}],
        "risk_model": {
            "stop_loss": {"kind": "atr", "indicator": "atr_14", "multiple": sl},
            "take_profit": {"kind": "atr", "indicator": "atr_14", "multiple": tp},
            **_costs(symbol),
        },
        "optimization_space": {
            "rsi_1.window": _opt(rsi_window, 5, 30, 1),
            "roc_1.window": _opt(roc_window, 2, 24, 1),
            "risk_model.stop_loss.multiple": _opt(sl, 1.0, 4.0, 0.25),
        },
        "data": {"embargo_bars": horizon},  # the fractions are the operator's
    }


TEMPLATES = {"trend_cross": trend_cross, "mean_reversion": mean_reversion, "neuro_fuzzy": neuro_fuzzy}


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import cached_step  # noqa: E402

design = cached_step(design_offline, "design")

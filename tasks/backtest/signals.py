"""Evaluate the contract's declarative rules into boolean signals, bar by bar at the close.

Rules read a *panel*: every reference (``close``, ``ema_fast``, ``fuzzy.rsi_14.oversold``, ``model.prob_up``)
is a 2-D array of shape (bars, combinations), or (bars, 1) when all combinations share it, and numpy
broadcasting lines the two up. A single backtest is the one-column case, so a sweep of many parameter
combinations and a single backtest evaluate the same code.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from strategy_contract.models import AllOf, AnyOf, Condition, Rule

Panel = Mapping[str, np.ndarray]


def evaluate(rule: Rule, panel: Panel) -> np.ndarray:
    """True at bars where the rule holds; a comparison with an undefined (NaN) value is False."""
    if isinstance(rule, AllOf):
        return _combine(rule.all, panel, all_=True)
    if isinstance(rule, AnyOf):
        return _combine(rule.any, panel, all_=False)
    return _condition(rule, panel)


def entry_signal(rules: list[Rule], panel: Panel) -> np.ndarray:
    """Entry rules must all hold."""
    return _combine(rules, panel, all_=True)


def exit_signal(rules: list[Rule], panel: Panel) -> np.ndarray:
    """Any exit rule is enough; no exit rules means only stops end a trade."""
    if not rules:
        return np.zeros((len(panel["close"]), 1), dtype=bool)
    return _combine(rules, panel, all_=False)


def _combine(rules: list[Rule], panel: Panel, all_: bool) -> np.ndarray:
    result = evaluate(rules[0], panel)
    for rule in rules[1:]:
        result = (result & evaluate(rule, panel)) if all_ else (result | evaluate(rule, panel))
    return result


def _shift_down(x: np.ndarray) -> np.ndarray:
    """The previous bar's value (False before the first bar)."""
    out = np.zeros_like(x)
    out[1:] = x[:-1]
    return out


def _condition(cond: Condition, panel: Panel) -> np.ndarray:
    left = panel[cond.left]
    right = panel[cond.right] if isinstance(cond.right, str) else np.float64(cond.right)
    defined = ~np.isnan(left) & ~np.isnan(right)
    with np.errstate(invalid="ignore"):
        if cond.op == ">":
            hit = left > right
        elif cond.op == ">=":
            hit = left >= right
        elif cond.op == "<":
            hit = left < right
        elif cond.op == "<=":
            hit = left <= right
        else:
            above = left > right
            prev_above = _shift_down(above)
            # a cross needs both bars defined: one side of the line before, the other side now
            crossed = (above & ~prev_above) if cond.op == "crosses_above" else (~above & prev_above)
            hit = crossed & _shift_down(defined)
    return hit & defined

"""Evaluate the contract's declarative rules into boolean signals, bar by bar at the close."""

from __future__ import annotations

import pandas as pd

from strategy_contract.models import AllOf, AnyOf, Condition, Rule


def evaluate(rule: Rule, frame: pd.DataFrame) -> pd.Series:
    """True at bars where the rule holds; a comparison with an undefined (NaN) value is False."""
    if isinstance(rule, AllOf):
        return _combine(rule.all, frame, all_=True)
    if isinstance(rule, AnyOf):
        return _combine(rule.any, frame, all_=False)
    return _condition(rule, frame)


def entry_signal(rules: list[Rule], frame: pd.DataFrame) -> pd.Series:
    """Entry rules must all hold."""
    return _combine(rules, frame, all_=True)


def exit_signal(rules: list[Rule], frame: pd.DataFrame) -> pd.Series:
    """Any exit rule is enough; no exit rules means only stops end a trade."""
    if not rules:
        return pd.Series(False, index=frame.index)
    return _combine(rules, frame, all_=False)


def _combine(rules: list[Rule], frame: pd.DataFrame, all_: bool) -> pd.Series:
    result = evaluate(rules[0], frame)
    for rule in rules[1:]:
        result = (result & evaluate(rule, frame)) if all_ else (result | evaluate(rule, frame))
    return result


def _condition(cond: Condition, frame: pd.DataFrame) -> pd.Series:
    left = frame[cond.left]
    right = (
        frame[cond.right] if isinstance(cond.right, str) else pd.Series(float(cond.right), index=frame.index)
    )
    defined = left.notna() & right.notna()
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
        prev_above = above.shift(1, fill_value=False).astype(bool)
        prev_defined = defined.shift(1, fill_value=False).astype(bool)
        # a cross needs both bars defined: one side of the line before, the other side now
        crossed = (above & ~prev_above) if cond.op == "crosses_above" else (~above & prev_above)
        hit = crossed & prev_defined
    return (hit & defined).astype(bool)

"""The offline critic: the next contract from the last iteration's evidence, by documented rules.

Rules, in order (each recorded with its code in the iteration's record):

1. ``switch_family``: no better best score for ``SWITCH_AFTER`` iterations: the next strategy family the
   campaign has not tried (trend crossover, breakout, mean reversion, neuro-fuzzy), a fresh contract from
   its template. A new design, not a patch, so the footprint limit does not apply; when every family has
   been tried the critic goes on refining instead.
2. ``loosen_entry``: the best candidate closed fewer trades than the gate asks (or nothing could be
   scored): the windows of the indicators the entry rules read move to shorter values (30 % lower), which
   crosses and thresholds reach more often.
3. ``tighten_stops``: the best candidate's walk-forward drawdown broke its gate: the stop-loss range (or
   the stop itself, when it is not tuned) shrinks by a quarter.
4. ``shift_space`` / ``narrow_space``: for each tuned parameter, a best value on the edge of its range
   moves the range by half its width beyond that edge (within the catalog's bounds); an inner best value
   narrows the range to half its width around it (at least two steps either side). The contract's
   values become the best candidate's.

At most ``max_changes`` parameters or fields change (the footprint, a campaign setting); the rules' order
is the priority. The patch is recorded as a unified diff of the contract's YAML.
"""

from __future__ import annotations

import difflib
import math
import random
from dataclasses import dataclass, field

from strategy_contract import parse_strategy
from strategy_contract.catalog import CATALOG
from strategy_contract.io import strategy_to_yaml
from strategy_contract.models import STOP_BOUNDS, Strategy

SWITCH_AFTER = 2
LOOSEN = 0.7
TIGHTEN = 0.75


@dataclass
class Critique:
    """The next contract, what changed (footprint) and why (rule codes with details), and the diff."""

    contract: Strategy
    actions: list[dict] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    diff: str = ""


def contract_diff(before: Strategy, after: Strategy, iteration: int) -> str:
    """Unified diff of the two contracts' YAML, as a patch file shows it."""
    return "".join(
        difflib.unified_diff(
            strategy_to_yaml(before).splitlines(keepends=True),
            strategy_to_yaml(after).splitlines(keepends=True),
            fromfile=f"a/iter_{iteration - 1}.yaml",
            tofile=f"b/iter_{iteration}.yaml",
        )
    )


def footprint(before: Strategy, after: Strategy) -> list[str]:
    """The fields a patch changes: each optimisation parameter counts once (its range, step and value
    together, and the indicator parameter it sets); any other changed leaf counts once."""
    a, b = _leaves(before.model_dump(mode="json")), _leaves(after.model_dump(mode="json"))
    space = set(before.optimization_space) | set(after.optimization_space)
    changed: set[str] = set()
    for path in set(a) | set(b):
        if a.get(path) == b.get(path) or path.split(".")[0] in ("version", "thesis", "strategy_id"):
            continue
        changed.add(_owner(path, space, before, after))
    return sorted(changed)


def _leaves(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) and "id" in v for v in value):
        out = {}
        for v in value:
            out.update(_leaves(v, f"{prefix}[{v['id']}]"))
        return out
    return {prefix: value}


def _owner(path: str, space: set[str], before: Strategy, after: Strategy) -> str:
    """The optimisation parameter a leaf belongs to, or the leaf itself."""
    if path.startswith("optimization_space."):
        for key in space:
            if path.startswith(f"optimization_space.{key}."):
                return key
    if path.startswith("indicators["):
        ident, _, rest = path[len("indicators[") :].partition("].params.")
        if rest and f"{ident}.{rest}" in space:
            return f"{ident}.{rest}"
    for key in space:
        if path == key:  # risk_model.stop_loss.multiple
            return key
    return path


def critique_offline(
    contract: Strategy,
    best: dict | None,
    since_improvement: int,
    tried_families: list[str],
    min_trades: int,
    max_drawdown: float,
    max_changes: int,
    iteration: int,
    fresh: dict,
) -> Critique:
    """The next contract after ``iteration``. ``best`` is the iteration's best row (parameters and
    walk-forward numbers) or None; ``fresh`` maps a family to a function giving a new contract of it."""
    untried = [f for f in fresh if f not in tried_families]
    if since_improvement >= SWITCH_AFTER and untried:
        family = untried[0]
        nxt = fresh[family]()
        detail = f"no better score for {since_improvement} iterations: a fresh {family} design"
        return Critique(
            contract=nxt,
            actions=[{"rule": "switch_family", "detail": detail, "family": family}],
            changed=["design"],
            diff=contract_diff(contract, nxt, iteration + 1),
        )
    data = contract.model_dump(mode="json", exclude_unset=True)
    space = data.setdefault("optimization_space", {})
    actions: list[dict] = []
    few_trades = best is None or not (best.get("oos_trades", 0) >= min_trades)
    if few_trades:
        for key in _entry_windows(contract):
            _scale_range(space, key, LOOSEN, contract)
            actions.append({"rule": "loosen_entry", "key": key, "detail": f"{key}: windows 30% shorter"})
    elif best.get("oos_max_drawdown", 0) > max_drawdown:
        actions += _tighten_stops(data, contract)
    if best is not None:
        for key in [k for k, opt in contract.optimization_space.items() if opt.enabled]:
            if key in best and not any(a.get("key") == key for a in actions):
                action = _move_range(space, key, float(best[key]), contract)
                if action:
                    actions.append(action)
    actions, dropped = actions[:max_changes], actions[max_changes:]
    for action in dropped:  # undo the changes past the footprint
        key = action["key"]
        if key in contract.optimization_space:
            space[key] = contract.optimization_space[key].model_dump(mode="json")
        elif key == "risk_model.stop_loss":
            data["risk_model"]["stop_loss"] = contract.risk_model.stop_loss.model_dump(mode="json")
    kept = {a["key"] for a in actions}
    data["version"] = contract.version + 1
    nxt = parse_strategy(data, source=f"offline critic (iteration {iteration})")
    if best is not None:
        values = {k: _within(best[k], nxt.optimization_space[k]) for k in kept if k in nxt.optimization_space}
        nxt = nxt.with_params(values) if values else nxt
    if not actions:
        actions.append({"rule": "keep", "key": "", "detail": "nothing to change: the same contract again"})
    return Critique(
        contract=nxt,
        actions=actions,
        changed=footprint(contract, nxt),
        diff=contract_diff(contract, nxt, iteration + 1),
    )


def _within(value: float, opt) -> float:
    return min(max(float(value), opt.min), opt.max)


def _bounds(contract: Strategy, key: str) -> tuple[float, float]:
    """The widest range a parameter may take: the catalog's, or a stop's allowed range."""
    head, _, param = key.rpartition(".")
    ind = contract.indicator(head)
    if ind is not None:
        p = CATALOG[ind.type].params[param]
        return float(p.min), float(p.max)
    stop = getattr(contract.risk_model, head.split(".")[-1], None)
    lo, hi = STOP_BOUNDS[(stop.kind, param)]
    return lo + 1e-9, hi


def _snap(x: float, base: float, step: float) -> float:
    return round(base + round((x - base) / step) * step, 10)


def _set_range(space: dict, key: str, lo: float, hi: float, contract: Strategy) -> None:
    opt = contract.optimization_space[key]
    low, high = _bounds(contract, key)
    step = opt.step
    lo = _snap(max(lo, low), opt.min, step)
    hi = _snap(min(hi, high), opt.min, step)
    while lo < low - 1e-12:
        lo = round(lo + step, 10)
    while hi > high + 1e-12:
        hi = round(hi - step, 10)
    if hi - lo < step - 1e-12:
        return
    value = min(max(opt.value, lo), hi)
    space[key] = {**opt.model_dump(mode="json"), "min": lo, "max": hi, "value": _snap(value, lo, step)}
    if space[key]["value"] > hi:
        space[key]["value"] = hi


def _move_range(space: dict, key: str, best: float, contract: Strategy) -> dict | None:
    opt = contract.optimization_space[key]
    width = opt.max - opt.min
    if best <= opt.min + 1e-12 or best >= opt.max - 1e-12:
        shift = math.copysign(width / 2, best - (opt.min + opt.max) / 2)
        _set_range(space, key, opt.min + shift, opt.max + shift, contract)
        rule, detail = "shift_space", f"{key}: best {best:g} on the edge; range moved by {shift:+g}"
    else:
        half = max(width / 4, 2 * opt.step)
        if 2 * half >= width - 1e-12:
            return None
        _set_range(space, key, best - half, best + half, contract)
        rule, detail = "narrow_space", f"{key}: range narrowed to +/-{half:g} around the best {best:g}"
    new = space.get(key, {})
    if (new.get("min"), new.get("max")) == (opt.min, opt.max):
        return None
    return {"rule": rule, "key": key, "detail": f"{detail} -> [{new['min']:g}, {new['max']:g}]"}


def _scale_range(space: dict, key: str, factor: float, contract: Strategy) -> None:
    opt = contract.optimization_space[key]
    _set_range(space, key, opt.min * factor, max(opt.max * factor, opt.min * factor + 2 * opt.step), contract)


def _entry_windows(contract: Strategy) -> list[str]:
    """Tuned whole-number parameters of the indicators the entry rules read."""
    read: set[str] = set()
    for rule in contract.entry_rules:
        read |= _refs(rule.model_dump(mode="json"))
    return [
        k
        for k, opt in contract.optimization_space.items()
        if opt.enabled and k.rpartition(".")[0] in read and contract.param_is_whole(k)
    ]


def _refs(node) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return {node.split(".")[0]} if isinstance(node, str) else set()


def _tighten_stops(data: dict, contract: Strategy) -> list[dict]:
    stop = contract.risk_model.stop_loss
    if stop is None:
        return []
    param = "multiple" if stop.kind == "atr" else "value"
    key = f"risk_model.stop_loss.{param}"
    opt = contract.optimization_space.get(key)
    if opt is not None and opt.enabled:
        _set_range(
            data["optimization_space"], key, opt.min, opt.min + (opt.max - opt.min) * TIGHTEN, contract
        )
        return [{"rule": "tighten_stops", "key": key, "detail": f"{key}: range cut by a quarter"}]
    current = getattr(stop, param)
    data["risk_model"]["stop_loss"] = {**stop.model_dump(mode="json"), param: round(current * TIGHTEN, 6)}
    return [{"rule": "tighten_stops", "key": "risk_model.stop_loss", "detail": f"stop {param} x {TIGHTEN}"}]


def seeded(seed: int, iteration: int) -> random.Random:
    """The critic's random source for a given iteration (fresh designs draw from it)."""
    return random.Random(f"{seed}:critic:{iteration}")

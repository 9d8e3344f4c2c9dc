"""The canonical strategy contract: one versioned document from design to export.

A contract is data, never code: indicators come from the catalog, rules are a small declarative
language (comparisons, crosses, all/any) over named references:

- a price field: ``open``, ``high``, ``low``, ``close``, ``volume``
- an indicator output: ``ema_fast`` (its first output) or ``macd_1.signal``
- a fuzzy membership degree (0-1): ``fuzzy.rsi_14.oversold``
- a model output (strategies with a model): ``model.prob_up``, ``model.signal``

Entry rules must all hold to open a position; any exit rule, stop or take-profit closes it.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from strategy_contract.catalog import CATALOG, MODEL_OUTPUTS, PRICE_FIELDS
from strategy_contract.errors import ContractError, problems_from, shown

CONTRACT_VERSION = 1
# A slug, optionally followed by '@<market>' for a contract run on another market than its own.
STRATEGY_ID_PATTERN = r"^[a-z][a-z0-9_]{1,62}[a-z0-9](@[a-z0-9][a-z0-9_]{0,22}[a-z0-9])?$"
STRATEGY_ID_MAX = 88
SLUG_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


class _Model(BaseModel):
    """Strict base: unknown fields are errors, so a typo never silently does nothing, and numbers are
    finite (a NaN threshold or gate compares false with everything and an infinite one cannot be exported)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def close_match(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """A ' (did you mean ...?)' hint, or '' when nothing is close."""
    found = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{found[0]}'?)" if found else ""


class StrategyIdError(ValueError):
    """A strategy name that cannot become a file name; the message starts with ``strategy_id:``."""


def validate_strategy_id(name: str) -> str:
    """Check a strategy name from anywhere (CLI, LLM, file) before it touches a path."""
    if not isinstance(name, str) or not name:
        raise StrategyIdError("strategy_id: must be a non-empty string")
    if len(name) > STRATEGY_ID_MAX:
        raise StrategyIdError(
            f"strategy_id: '{name[:20]}...' is {len(name)} characters; the limit is {STRATEGY_ID_MAX}"
        )
    if not re.fullmatch(STRATEGY_ID_PATTERN, name):
        raise StrategyIdError(
            f"strategy_id: {name!r} is not a safe name; use 3-64 lower-case letters, digits and "
            "underscores, starting with a letter, optionally followed by '@' and a market such as "
            "'@spx_1d' (it becomes a file name)"
        )
    return name


# --- indicators ---------------------------------------------------------------------------------


class IndicatorSpec(_Model):
    """One indicator instance: a catalog type, its parameters, and the id rules refer to it by."""

    id: str = Field(pattern=SLUG_PATTERN, description="Name used in rules, e.g. 'ema_fast'.")
    type: str = Field(description=f"Catalog type, one of: {', '.join(CATALOG)}.")
    params: dict[str, int | float] = Field(
        default_factory=dict, description="Parameters by name; missing ones take the catalog default."
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in CATALOG:
            raise ValueError(f"unknown indicator type '{value}'{close_match(value, list(CATALOG))}")
        return value

    @model_validator(mode="after")
    def _params_within_catalog(self) -> IndicatorSpec:
        spec = CATALOG[self.type]
        for name in self.params:
            if name not in spec.params:
                raise ValueError(
                    f"params.{name}: '{self.type}' has no parameter '{name}'"
                    f"{close_match(name, list(spec.params))}; it takes {', '.join(spec.params)}"
                )
        filled: dict[str, float] = {}
        for name, p in spec.params.items():
            value = self.params.get(name, p.default)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"params.{name}: {value} is not a finite number")
            if not p.min <= value <= p.max:  # before float(): an int past 1e308 has no float
                raise ValueError(
                    f"params.{name}: {shown(value)} is outside [{p.min}, {p.max}] for {self.type}.{name}"
                )
            if p.type is int and float(value) != int(value):
                raise ValueError(f"params.{name}: {value} must be a whole number")
            filled[name] = int(value) if p.type is int else float(value)
        for a, b in spec.ordered:
            if not filled[a] < filled[b]:
                raise ValueError(f"params: {a} ({filled[a]}) must be less than {b} ({filled[b]})")
        object.__setattr__(self, "params", filled)  # defaults filled in, ints as ints
        return self


# --- fuzzy membership functions -----------------------------------------------------------------


class Triangular(_Model):
    """Rises from a to a peak at b, falls to zero at c."""

    shape: Literal["triangular"] = "triangular"
    points: tuple[float, float, float] = Field(description="[a, b, c] with a <= b <= c and a < c.")

    @field_validator("points")
    @classmethod
    def _ordered(cls, pts: tuple[float, ...]) -> tuple[float, ...]:
        return _check_points(pts)

    def degree(self, x: np.ndarray) -> np.ndarray:
        a, b, c = self.points
        up = (x - a) / (b - a) if b > a else (x >= a).astype(float)
        down = (c - x) / (c - b) if c > b else (x <= c).astype(float)
        return np.clip(np.minimum(up, down), 0.0, 1.0)


class Trapezoidal(_Model):
    """Rises from a to b, is 1 between b and c, falls to zero at d."""

    shape: Literal["trapezoidal"] = "trapezoidal"
    points: tuple[float, float, float, float] = Field(description="[a, b, c, d], non-decreasing, a < d.")

    @field_validator("points")
    @classmethod
    def _ordered(cls, pts: tuple[float, ...]) -> tuple[float, ...]:
        return _check_points(pts)

    def degree(self, x: np.ndarray) -> np.ndarray:
        a, b, c, d = self.points
        up = (x - a) / (b - a) if b > a else (x >= a).astype(float)
        down = (d - x) / (d - c) if d > c else (x <= d).astype(float)
        return np.clip(np.minimum(np.minimum(up, 1.0), down), 0.0, 1.0)


class Gaussian(_Model):
    """A bell centred on `mean` with width `sigma`."""

    shape: Literal["gaussian"] = "gaussian"
    mean: float
    sigma: float = Field(gt=0)

    def degree(self, x: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * ((x - self.mean) / self.sigma) ** 2)


def _check_points(pts: tuple[float, ...]) -> tuple[float, ...]:
    if not all(math.isfinite(p) for p in pts):
        raise ValueError(f"points {list(pts)} must be finite numbers")
    if list(pts) != sorted(pts) or pts[0] == pts[-1]:
        raise ValueError(f"points {list(pts)} must be non-decreasing with first < last")
    return pts


Membership = Annotated[Triangular | Trapezoidal | Gaussian, Field(discriminator="shape")]


# --- the rule language --------------------------------------------------------------------------

Comparison = Literal[">", ">=", "<", "<=", "crosses_above", "crosses_below"]


class Condition(_Model):
    """`left op right`, evaluated at each bar's close; crosses compare with the previous bar."""

    left: str = Field(description="A reference: price field, indicator output, fuzzy.*, model.*.")
    op: Comparison
    right: str | float = Field(description="A reference or a number.")


class AllOf(_Model):
    """True when every rule inside is true."""

    all: list[Rule] = Field(min_length=1)


class AnyOf(_Model):
    """True when at least one rule inside is true."""

    any: list[Rule] = Field(min_length=1)


def _rule_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "AllOf" if "all" in value else "AnyOf" if "any" in value else "Condition"
    return type(value).__name__


Rule = Annotated[
    Annotated[Condition, Tag("Condition")] | Annotated[AllOf, Tag("AllOf")] | Annotated[AnyOf, Tag("AnyOf")],
    Discriminator(_rule_kind),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()


def iter_conditions(rules: list[Rule], path: str):
    """Yield (path, condition) for every condition in a rule tree."""
    for i, rule in enumerate(rules):
        here = f"{path}[{i}]"
        if isinstance(rule, Condition):
            yield here, rule
        elif isinstance(rule, AllOf):
            yield from iter_conditions(rule.all, f"{here}.all")
        else:
            yield from iter_conditions(rule.any, f"{here}.any")


# --- model --------------------------------------------------------------------------------------


class ForwardReturnLabel(_Model):
    """Up / flat / down by the return from this close to the close `horizon` bars later."""

    kind: Literal["forward_return"] = "forward_return"
    horizon: int = Field(5, ge=1, le=200, description="Bars ahead.")
    threshold: float = Field(0.002, gt=0, le=0.2, description="Return (fraction) that counts as a move.")


class ZigZagLabel(_Model):
    """Up / down by which barrier (+/- threshold from this close) is touched first; flat if neither
    is touched within `max_horizon` bars."""

    kind: Literal["zigzag"] = "zigzag"
    threshold: float = Field(0.01, gt=0, le=0.3, description="Swing size as a fraction of price.")
    max_horizon: int = Field(48, ge=2, le=500, description="Bars to wait for a swing.")


Label = Annotated[ForwardReturnLabel | ZigZagLabel, Field(discriminator="kind")]


class NoModel(_Model):
    """A rule-only strategy: no training step."""

    kind: Literal["none"] = "none"


class MLPModel(_Model):
    """An MLP over the fuzzy membership degrees of the last `lookback` bars, predicting the label."""

    kind: Literal["mlp"] = "mlp"
    hidden_layers: list[int] = Field([32, 16], min_length=1, max_length=4)
    dropout: float = Field(0.1, ge=0, le=0.8)
    learning_rate: float = Field(1e-3, ge=1e-5, le=0.1)
    epochs: int = Field(30, ge=1, le=300)
    batch_size: int = Field(256, ge=8, le=4096)
    patience: int = Field(
        5, ge=1, le=50, description="Epochs without validation improvement before stopping."
    )
    lookback: int = Field(1, ge=1, le=20, description="Bars of membership history fed to the model.")
    label: Label = Field(default_factory=ForwardReturnLabel)

    @field_validator("hidden_layers")
    @classmethod
    def _layer_sizes(cls, sizes: list[int]) -> list[int]:
        for i, size in enumerate(sizes):
            if not 2 <= size <= 512:
                raise ValueError(f"hidden_layers[{i}]: {size} units is outside [2, 512]")
        return sizes


Model = Annotated[NoModel | MLPModel, Field(discriminator="kind")]


# --- risk, optimisation, gates, data ------------------------------------------------------------


class PercentStop(_Model):
    """A stop at a fixed fraction of the entry price."""

    kind: Literal["percent"] = "percent"
    value: float = Field(gt=0, le=0.5, description="Fraction of entry price, e.g. 0.02 for 2%.")


class ATRStop(_Model):
    """A stop at `multiple` x ATR (taken at the signal bar) from the entry price."""

    kind: Literal["atr"] = "atr"
    indicator: str = Field(description="id of an 'atr' indicator of this strategy.")
    multiple: float = Field(gt=0, le=20)


Stop = Annotated[PercentStop | ATRStop, Field(discriminator="kind")]


# (exclusive low, inclusive high) of each stop size, as the Field bounds above say
STOP_BOUNDS = {("percent", "value"): (0.0, 0.5), ("atr", "multiple"): (0.0, 20.0)}


class RiskModel(_Model):
    """Stops, sizing and costs. One cost model is used in every backtest."""

    direction: Literal["long", "short"] = "long"
    stop_loss: Stop | None = None
    take_profit: Stop | None = None
    trailing_stop: bool = Field(False, description="Trail the stop loss behind the best price since entry.")
    position_size: float = Field(1.0, gt=0, le=1.0, description="Fraction of equity per position.")
    fees: float = Field(0.0005, ge=0, le=0.01, description="Per fill, fraction of value (0.0002 for FX).")
    slippage: float = Field(0.0002, ge=0, le=0.01, description="Per fill, fraction of price, against us.")
    init_cash: float = Field(10_000.0, gt=0)


class OptimizationParam(_Model):
    """A tunable parameter: its range, step and current value."""

    enabled: bool = True
    min: float
    max: float
    step: float = Field(gt=0)
    value: float

    @model_validator(mode="after")
    def _within_range(self) -> OptimizationParam:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be less than max ({self.max})")
        if not self.min <= self.value <= self.max:
            raise ValueError(f"value {self.value} is outside [min {self.min}, max {self.max}]")
        return self


class TrainingGate(_Model):
    """Seed 000 defaults: skip the backtest when training is this weak."""

    min_accuracy: float = Field(0.45, ge=0, le=1)
    max_final_loss: float = Field(0.8, gt=0)
    min_loss_decrease: float = Field(0.2, ge=-1, le=1, description="(initial - final) / initial loss.")


class BacktestGate(_Model):
    """Seed 000 defaults, on the held-out backtest."""

    min_win_rate: float = Field(0.45, ge=0, le=1)
    max_drawdown: float = Field(0.40, gt=0, le=1)
    min_sharpe: float = Field(-0.5)
    min_trades: int = Field(1, ge=0, le=1_000_000, description="Fewer trades than this say nothing.")


class Gates(_Model):
    training: TrainingGate = Field(default_factory=TrainingGate)
    backtest: BacktestGate = Field(default_factory=BacktestGate)


class DataSplit(_Model):
    """Time-ordered split; the test part (the latest bars) is held out for the backtest."""

    train: float = Field(0.6, gt=0, lt=1)
    validation: float = Field(0.2, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)
    embargo_bars: int = Field(
        24, ge=0, le=1000, description="Bars dropped between parts so labels never overlap."
    )

    @model_validator(mode="after")
    def _sums_to_one(self) -> DataSplit:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test = {total:g}; they must add up to 1")
        return self


# --- the contract ---------------------------------------------------------------------------------


class Strategy(_Model):
    """A complete, versioned strategy. ``strategy_id`` becomes a file name, so it is a safe slug."""

    contract_version: Literal[1] = Field(CONTRACT_VERSION, description="Version of this document format.")
    strategy_id: str = Field(pattern=STRATEGY_ID_PATTERN, max_length=STRATEGY_ID_MAX)
    version: int = Field(1, ge=1, le=1_000_000, description="Revision of this strategy.")
    thesis: str = Field(
        min_length=10, max_length=2000, description="Why it should work, in a sentence or two."
    )
    markets: list[Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9._-]{0,19}$")]] = Field(min_length=1)
    timeframes: list[Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}(m|h|d)$")]] = Field(min_length=1)
    indicators: list[IndicatorSpec] = Field(min_length=1, max_length=20)
    fuzzy_sets: dict[str, dict[str, Membership]] = Field(
        default_factory=dict,
        description="Per indicator reference (e.g. 'rsi_14' or 'macd_1.hist'), named membership functions.",
    )
    model: Model = Field(default_factory=NoModel)
    entry_rules: list[Rule] = Field(min_length=1, description="All must hold to enter.")
    exit_rules: list[Rule] = Field(default_factory=list, description="Any one exits.")
    risk_model: RiskModel = Field(default_factory=RiskModel)
    optimization_space: dict[str, OptimizationParam] = Field(
        default_factory=dict, description="Keys '<indicator id>.<param>' or 'risk_model.<stop>.<field>'."
    )
    gates: Gates = Field(default_factory=Gates)
    data: DataSplit = Field(default_factory=DataSplit)

    @model_validator(mode="after")
    def _cross_checks(self) -> Strategy:
        problems = self.reference_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # References ----------------------------------------------------------------------------------

    def indicator(self, indicator_id: str) -> IndicatorSpec | None:
        return next((ind for ind in self.indicators if ind.id == indicator_id), None)

    def indicator_refs(self) -> list[str]:
        """Every name an indicator output can be referred to by."""
        refs: list[str] = []
        for ind in self.indicators:
            outputs = CATALOG[ind.type].outputs
            refs.append(ind.id)
            refs.extend(f"{ind.id}.{out}" for out in outputs)
        return refs

    def known_refs(self) -> list[str]:
        refs = list(PRICE_FIELDS) + self.indicator_refs()
        refs += [f"fuzzy.{src}.{name}" for src, sets in self.fuzzy_sets.items() for name in sets]
        if isinstance(self.model, MLPModel):
            refs += [f"model.{out}" for out in MODEL_OUTPUTS]
        return refs

    def reference_problems(self) -> list[str]:
        """Cross-field checks, each message starting with the field path."""
        problems: list[str] = []
        ids = [ind.id for ind in self.indicators]
        for i, ind_id in enumerate(ids):
            if ind_id in PRICE_FIELDS or ind_id in ("fuzzy", "model"):
                problems.append(f"indicators[{i}].id: '{ind_id}' is reserved; choose another name")
            if ids.index(ind_id) != i:
                problems.append(f"indicators[{i}].id: '{ind_id}' is used twice")
        indicator_refs = self.indicator_refs()
        for src, sets in self.fuzzy_sets.items():
            if src not in indicator_refs and src not in PRICE_FIELDS:
                problems.append(
                    f"fuzzy_sets.{src}: no indicator output '{src}'{close_match(src, indicator_refs)}"
                )
            for name in sets:
                if not re.fullmatch(SLUG_PATTERN, name):
                    problems.append(f"fuzzy_sets.{src}.{name}: set names are lower-case slugs")
        known = self.known_refs()
        for path, cond in [
            *iter_conditions(self.entry_rules, "entry_rules"),
            *iter_conditions(self.exit_rules, "exit_rules"),
        ]:
            for side in ("left", "right"):
                ref = getattr(cond, side)
                if isinstance(ref, str) and ref not in known:
                    hint = close_match(ref, known)
                    if ref.startswith("model.") and not isinstance(self.model, MLPModel):
                        hint = " (this strategy has no model; set model.kind to 'mlp')"
                    problems.append(f"{path}.{side}: unknown reference '{ref}'{hint}")
        if isinstance(self.model, MLPModel):
            label = self.model.label
            reach = label.horizon if isinstance(label, ForwardReturnLabel) else label.max_horizon
            if self.data.embargo_bars < reach:
                problems.append(
                    f"data.embargo_bars: {self.data.embargo_bars} is shorter than the label's look-ahead of "
                    f"{reach} bars; labels would leak across the split (set it to at least {reach})"
                )
        if isinstance(self.model, MLPModel) and not self.fuzzy_sets:
            problems.append("fuzzy_sets: a model needs fuzzy sets; its inputs are their membership degrees")
        for name in ("stop_loss", "take_profit"):
            stop = getattr(self.risk_model, name)
            if isinstance(stop, ATRStop):
                ind = self.indicator(stop.indicator)
                if ind is None or ind.type != "atr":
                    atrs = [i.id for i in self.indicators if i.type == "atr"]
                    problems.append(
                        f"risk_model.{name}.indicator: '{stop.indicator}' is not an atr indicator of this "
                        f"strategy (atr indicators: {atrs or 'none; add one'})"
                    )
        if not self.exit_rules and self.risk_model.stop_loss is None and self.risk_model.take_profit is None:
            problems.append(
                "exit_rules: give at least one exit rule, stop_loss or take_profit, or trades never end"
            )
        problems += self._optimization_problems()
        return problems

    def _optimization_problems(self) -> list[str]:
        problems = []
        for key, opt in self.optimization_space.items():
            path = f"optimization_space.{key}"
            head, _, param = key.rpartition(".")
            ind = self.indicator(head)
            if ind is not None and param in CATALOG[ind.type].params:
                p = CATALOG[ind.type].params[param]
                if opt.min < p.min or opt.max > p.max:
                    problems.append(
                        f"{path}: range [{opt.min}, {opt.max}] exceeds the catalog's [{p.min}, {p.max}]"
                    )
            elif head in ("risk_model.stop_loss", "risk_model.take_profit") and param in (
                "multiple",
                "value",
            ):
                stop = getattr(self.risk_model, head.split(".")[1])
                if stop is None or not hasattr(stop, param):
                    problems.append(f"{path}: {head} has no field '{param}'")
                else:
                    lo, hi = STOP_BOUNDS[(stop.kind, param)]
                    if opt.min <= lo or opt.max > hi:
                        problems.append(
                            f"{path}: range [{opt.min}, {opt.max}] exceeds the allowed ({lo}, {hi}] "
                            f"of a {stop.kind} stop's {param}"
                        )
            else:
                choices = [f"{i.id}.{p}" for i in self.indicators for p in CATALOG[i.type].params]
                problems.append(f"{path}: not a tunable parameter{close_match(key, choices)}")
        return problems

    # Convenience ---------------------------------------------------------------------------------

    @property
    def symbol(self) -> str:
        return self.markets[0]

    @property
    def timeframe(self) -> str:
        return self.timeframes[0]

    @property
    def has_model(self) -> bool:
        return isinstance(self.model, MLPModel)

    def param_is_whole(self, key: str) -> bool:
        """Whether an optimisation parameter takes whole numbers (an indicator window, not a stop size)."""
        head, _, param = key.rpartition(".")
        ind = self.indicator(head)
        return ind is not None and CATALOG[ind.type].params[param].type is int

    def with_params(self, values: dict[str, float]) -> Strategy:
        """This contract with optimisation parameters set, e.g. ``{"ema_fast.window": 10}``: the parameter
        itself and its ``optimization_space`` value. Validated like any contract, so a value outside the
        catalog's bounds or an unordered pair (MACD fast >= slow) is refused naming the field."""
        data = self.model_dump(mode="json")  # every value, also those the operator filled in
        changed: set[str] = set()
        for key, value in values.items():
            if key not in self.optimization_space:
                raise ValueError(
                    f"optimization_space.{key}: not a parameter of this contract"
                    f"{close_match(key, list(self.optimization_space))}"
                )
            value = int(round(value)) if self.param_is_whole(key) else float(value)
            data["optimization_space"][key]["value"] = value
            head, _, param = key.rpartition(".")
            if head.startswith("risk_model."):
                data["risk_model"][head.split(".")[1]][param] = value
                continue
            changed.add(head)
            for ind in data["indicators"]:
                if ind["id"] == head:
                    ind["params"][param] = value
        result = Strategy.model_validate(data)
        _keep_fields_set(self, result)  # saved with exclude_unset, it still writes what this one set
        for ind in result.indicators:
            if ind.id in changed:
                ind.__pydantic_fields_set__.add("params")
        return result

    def on_market(self, symbol: str, timeframe: str) -> Strategy:
        """This contract run on another market: its own id gains '@<symbol>_<timeframe>'
        (``ema_cross_atr@spx_1d``), so the run never mixes with, or rewrites, the original's files.
        Costs belong to a market, so on another symbol the contract's fees and slippage are dropped and
        that market's defaults (the operator's cost floors) apply."""
        if (symbol, timeframe) == (self.symbol, self.timeframe):
            return self
        base = self.strategy_id.split("@")[0]
        market = re.sub(r"[^a-z0-9]+", "_", f"{symbol}_{timeframe}".lower()).strip("_")
        data = self.model_dump(mode="json", exclude_unset=True)
        data.update(strategy_id=f"{base}@{market}", markets=[symbol], timeframes=[timeframe])
        if symbol != self.symbol:
            for cost in ("fees", "slippage"):
                data.get("risk_model", {}).pop(cost, None)
        try:  # the symbol and timeframe come from a form or the command line
            return Strategy.model_validate(data)
        except ValidationError as exc:
            raise ContractError(f"{base} on {symbol!r} {timeframe!r}", problems_from(exc)) from None


def _keep_fields_set(before: Any, after: Any) -> None:
    """Give ``after`` (a copy of ``before`` with some values changed) the same fields-set marks, so
    ``model_dump(exclude_unset=True)`` of both names the same fields."""
    if isinstance(before, BaseModel) and isinstance(after, BaseModel):
        after.__pydantic_fields_set__ = set(before.model_fields_set)
        for name in type(before).model_fields:
            _keep_fields_set(getattr(before, name), getattr(after, name))
    elif isinstance(before, list | tuple) and isinstance(after, list | tuple):
        for b, a in zip(before, after, strict=False):
            _keep_fields_set(b, a)
    elif isinstance(before, dict) and isinstance(after, dict):
        for key in before.keys() & after.keys():
            _keep_fields_set(before[key], after[key])

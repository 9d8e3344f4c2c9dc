"""Operator settings: the bar every strategy is judged by, owned by the person running the lab.

A contract carries its own gates, costs and data split, but the designer (offline or Claude) writes
it, so it may only TIGHTEN what the operator sets here, never loosen it. ``enforce_operator_rules``
turns a contract into the one the cycle runs: fields it leaves unset take the operator's values, a
stricter value is kept, and a looser one is rejected with one problem per field.

Where the settings come from, lowest priority first:

1. built-in defaults (the ``OperatorSettings`` field defaults, identical to the shipped file);
2. the TOML file ``$STRATLAB_SETTINGS`` if that is set (it must exist), else ``stratlab.toml`` at the
   repository root (skipped when absent). Keys it leaves out keep the built-in defaults; its
   ``[symbols]`` table is added to the built-in mapping of the shipped data;
3. one environment variable per key: ``STRATLAB_`` + the key's path in upper case, dots as
   underscores. ``STRATLAB_GATES_BACKTEST_MIN_SHARPE=-0.2``, ``STRATLAB_GATES_TRAINING_MIN_ACCURACY``,
   ``STRATLAB_COSTS_FX_FEES=0.0002``, ``STRATLAB_COSTS_STOCKS_SLIPPAGE``, ``STRATLAB_MIN_HELD_OUT=0.25``,
   ``STRATLAB_DEFAULT_ASSET_CLASS=indices``, ``STRATLAB_SYMBOLS_BTCUSD=fx``. An empty variable counts
   as unset; a ``STRATLAB_GATES_*``, ``STRATLAB_COSTS_*`` or ``STRATLAB_SYMBOLS_*`` variable that
   names no key is an error, so a typo never silently does nothing.

Every error names where the bad value came from (file or variable), the key and the reason.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from strategy_contract import ContractError, Strategy, parse_strategy
from strategy_contract.models import DataSplit

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETTINGS_FILE = REPO_ROOT / "stratlab.toml"
SETTINGS_ENV = "STRATLAB_SETTINGS"
ENV_PREFIX = "STRATLAB_"
SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9._-]{0,19}$"  # as the contract's markets
CLASS_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
BUILT_IN = "built-in default (tasks/settings.py)"

# The shipped data. A settings file's [symbols] table is added to this (its entries win).
SHIPPED_SYMBOLS: dict[str, str] = {
    "EURUSD": "fx",
    **{s: "stocks" for s in ("AAPL", "AMZN", "GOOG", "META", "NFLX", "NVDA")},
    "SPX": "indices",
    "IXIC": "indices",
}


class SettingsError(ValueError):
    """Operator settings were rejected. ``problems`` lists (source, key, reason)."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = problems
        lines = [f"{src}: {key}: {reason}" if key else f"{src}: {reason}" for src, key, reason in problems]
        super().__init__("operator settings rejected:\n  - " + "\n  - ".join(lines))


class _Strict(BaseModel):
    """Unknown keys are errors and nothing is coerced: a string is not a number, true is not 1."""

    model_config = ConfigDict(extra="forbid", strict=True)


class TrainingFloor(_Strict):
    """The weakest training gate a contract may set (seed 000 defaults)."""

    min_accuracy: float = Field(
        0.45, ge=0, le=1, description="Minimum validation accuracy (fraction 0-1); a contract may raise it."
    )
    max_final_loss: float = Field(
        0.8, gt=0, allow_inf_nan=False, description="Maximum final validation loss; a contract may lower it."
    )
    min_loss_decrease: float = Field(
        0.2,
        ge=-1,
        le=1,
        description="Minimum (initial - final) / initial validation loss (fraction); a contract may raise it.",
    )


class BacktestFloor(_Strict):
    """The weakest backtest gate a contract may set (seed 000 defaults)."""

    min_win_rate: float = Field(
        0.45, ge=0, le=1, description="Minimum share of winning trades (fraction 0-1); may be raised."
    )
    max_drawdown: float = Field(
        0.40, gt=0, le=1, description="Maximum peak-to-trough equity drawdown (fraction 0-1); may be lowered."
    )
    min_sharpe: float = Field(
        -0.5, allow_inf_nan=False, description="Minimum annualised Sharpe ratio; may be raised."
    )
    min_trades: int = Field(
        1, ge=1, description="Minimum number of trades (at least 1: no trades say nothing); may be raised."
    )


class GateFloors(_Strict):
    training: TrainingFloor = Field(default_factory=TrainingFloor, description="Training gate floors.")
    backtest: BacktestFloor = Field(default_factory=BacktestFloor, description="Backtest gate floors.")


class CostFloor(_Strict):
    """The cheapest costs a contract may assume for one asset class."""

    fees: float = Field(ge=0, le=0.01, description="Fees per fill, as a fraction of the traded value.")
    slippage: float = Field(ge=0, le=0.01, description="Slippage per fill, as a fraction of the price.")


def _default_costs() -> dict[str, CostFloor]:
    return {
        "fx": CostFloor(fees=0.0001, slippage=0.00005),
        "stocks": CostFloor(fees=0.0005, slippage=0.0002),
        "indices": CostFloor(fees=0.0005, slippage=0.0002),
    }


class OperatorSettings(_Strict):
    """The operator's bar: minimum gates, cost floors per asset class, and the held-out share."""

    gates: GateFloors = Field(
        default_factory=GateFloors, description="Weakest gates a contract may set; also their defaults."
    )
    costs: dict[str, CostFloor] = Field(
        default_factory=_default_costs,
        description="Cost floors per asset class (fx, stocks, indices, or classes of your own).",
    )
    symbols: dict[str, str] = Field(
        default_factory=lambda: dict(SHIPPED_SYMBOLS),
        description="Asset class of each symbol; the file's [symbols] is added to the shipped data's.",
    )
    default_asset_class: str | None = Field(
        None,
        description="Class of a symbol not in `symbols`; unset: the class with the highest fees + slippage "
        "(ties: the first listed), so an unknown symbol is never treated as cheap.",
    )
    min_held_out: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Minimum data.test fraction: the latest bars, held out for the backtest.",
    )
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> OperatorSettings:
        problems = []
        if not self.costs:
            problems.append("costs: give at least one asset class")
        for name in self.costs:
            if not re.fullmatch(CLASS_PATTERN, name):
                problems.append(f"costs.{name}: asset class names are lower-case slugs, e.g. 'crypto'")
        known = ", ".join(self.costs)
        for symbol, cls in self.symbols.items():
            if not re.fullmatch(SYMBOL_PATTERN, symbol):
                problems.append(
                    f"symbols.{symbol}: not a symbol name (upper-case letters, digits, '.', '_', '-', "
                    "as in a contract's markets)"
                )
            if cls not in self.costs:
                problems.append(
                    f"symbols.{symbol}: asset class '{cls}' has no [costs.{cls}] table{_hint(cls, self.costs)}; "
                    f"known: {known}"
                )
        if self.default_asset_class is None and self.costs:
            self.default_asset_class = max(
                self.costs, key=lambda c: self.costs[c].fees + self.costs[c].slippage
            )
        elif self.default_asset_class is not None and self.default_asset_class not in self.costs:
            problems.append(
                f"default_asset_class: '{self.default_asset_class}' has no [costs.{self.default_asset_class}] "
                f"table{_hint(self.default_asset_class, self.costs)}; known: {known}"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def default_split(self) -> DataSplit:
        """The split of a contract that sets none: ``min_held_out`` held out, the rest 3:1 train to
        validation (the contract's own default ratio)."""
        train = round((1 - self.min_held_out) * 0.75, 9)
        return DataSplit(
            train=train, validation=round(1 - self.min_held_out - train, 9), test=self.min_held_out
        )

    def origin(self, key: str) -> str:
        """Where the value of a dotted key came from: a file and table, a variable, or the built-in."""
        parts = key.split(".")
        for n in range(len(parts), 0, -1):
            found = self._origins.get(".".join(parts[:n]))
            if found:
                return found
        return BUILT_IN


def _hint(name: str, choices: Any) -> str:
    found = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" (did you mean '{found[0]}'?)" if found else ""


# --- loading ------------------------------------------------------------------------------------


def _leaf_keys(data: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path in nested tables, tables included."""
    out = []
    for key, value in data.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += _leaf_keys(value, (*prefix, key))
    return out


def _merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set(data: dict, path: list[str] | tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value


def settings_path() -> Path | None:
    """``$STRATLAB_SETTINGS`` (which must exist), else the repository's stratlab.toml, else None."""
    chosen = os.environ.get(SETTINGS_ENV, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise SettingsError([(f"{SETTINGS_ENV}={chosen}", "", "settings file not found")])
        return path
    return DEFAULT_SETTINGS_FILE if DEFAULT_SETTINGS_FILE.is_file() else None


_TABLES: dict[str, type[BaseModel]] = {
    "": OperatorSettings,
    "gates": GateFloors,
    "gates.training": TrainingFloor,
    "gates.backtest": BacktestFloor,
}
_INT_KEYS = {"gates.backtest.min_trades"}
_STR_KEYS = {"default_asset_class"}


def _env_key(var: str) -> tuple[str, ...] | None:
    """The key path an environment variable overrides; None if the variable is not a setting;
    SettingsError if it claims a settings prefix but names no key."""
    rest = var[len(ENV_PREFIX) :]
    if rest in ("MIN_HELD_OUT", "DEFAULT_ASSET_CLASS"):
        return (rest.lower(),)
    if rest.startswith("SYMBOLS_") and len(rest) > len("SYMBOLS_"):
        return ("symbols", rest[len("SYMBOLS_") :])
    if rest.startswith("GATES_"):
        known = []
        for gate in ("training", "backtest"):
            head = f"GATES_{gate.upper()}_"
            fields = list(_TABLES[f"gates.{gate}"].model_fields)
            if rest.startswith(head) and rest[len(head) :].lower() in fields:
                return ("gates", gate, rest[len(head) :].lower())
            known += [f"{ENV_PREFIX}{head}{f.upper()}" for f in fields]
        raise SettingsError([(f"environment variable {var}", "", f"no such setting{_hint(var, known)}")])
    if rest.startswith("COSTS_"):
        cls, _, field = rest[len("COSTS_") :].rpartition("_")
        if cls and field in ("FEES", "SLIPPAGE"):
            return ("costs", cls.lower(), field.lower())
        raise SettingsError(
            [
                (
                    f"environment variable {var}",
                    "",
                    "no such setting; use STRATLAB_COSTS_<CLASS>_FEES or _SLIPPAGE",
                )
            ]
        )
    return None


def _env_value(source: str, key: str, raw: str) -> Any:
    text = raw.strip()
    if key in _STR_KEYS or key.startswith("symbols."):
        return text
    try:
        return int(text) if key in _INT_KEYS else float(text)
    except ValueError:
        kind = "a whole number" if key in _INT_KEYS else "a number"
        raise SettingsError([(source, key, f"not {kind}")]) from None


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> OperatorSettings:
    """Built-in defaults, then the file (if any), then environment overrides; validated as a whole."""
    environ = os.environ if environ is None else environ
    origins: dict[str, str] = {}  # key -> where it came from, as the enforcement messages show it
    sources: dict[str, str] = {}  # key -> where it came from, as load errors show it
    data: dict[str, Any] = OperatorSettings().model_dump(exclude={"default_asset_class"})
    if path is not None:
        try:
            from_file = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError([(str(path), "", f"cannot read the settings file ({exc})")]) from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError([(str(path), "", f"not valid TOML ({exc})")]) from None
        for parts in _leaf_keys(from_file):
            key = ".".join(parts)
            table = ".".join(parts[:-1])
            origins[key] = f"{path.name} [{table}]" if table else f"{path.name} {key}"
            sources[key] = str(path)
        data = _merge(data, from_file)
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or not environ[var].strip():
            continue
        parts = _env_key(var)
        if parts is None:
            continue
        key = ".".join(parts)
        sources[key] = f"environment variable {var}={environ[var]!r}"
        for n in range(2, len(parts)):  # a table it creates, e.g. costs.crypto, is its doing too
            sources.setdefault(".".join(parts[:n]), sources[key])
        origins[key] = f"environment variable {var}"
        _set(data, parts, _env_value(sources[key], key, environ[var]))
    try:
        settings = OperatorSettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_problems(exc, sources)) from None
    settings._origins = origins
    return settings


def _problems(exc: ValidationError, sources: dict[str, str]) -> list[tuple[str, str, str]]:
    def source(key: str) -> str:
        parts = key.split(".")
        for n in range(len(parts), 0, -1):
            if ".".join(parts[:n]) in sources:
                return sources[".".join(parts[:n])]
        return BUILT_IN

    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            table = ".".join(str(p) for p in err["loc"][:-1])
            model = CostFloor if table.startswith("costs.") else _TABLES.get(table, OperatorSettings)
            known = list(model.model_fields)
            reason = f"unknown key{_hint(err['loc'][-1], known)}; known keys here: {', '.join(known)}"
            problems.append((source(key), key, reason))
        elif err["type"] == "missing":
            problems.append((source(key), key, "missing; this table needs it"))
        elif not key:  # the cross-field checks carry their own key
            for line in msg.split("\n"):
                k, _, reason = line.partition(": ")
                problems.append((source(k), k, reason))
        else:
            problems.append((source(key), key, f"{msg} (got {err.get('input')!r})"))
    return problems


def operator_settings() -> OperatorSettings:
    """The operator's settings now: ``$STRATLAB_SETTINGS`` or the repository's ``stratlab.toml``, then
    ``STRATLAB_*`` environment overrides. Read on every call, so a change applies to the next cycle."""
    return load_settings(settings_path())


# --- the rules ----------------------------------------------------------------------------------


def asset_class(symbol: str, settings: OperatorSettings | None = None) -> str:
    """The asset class of a symbol: its [symbols] entry, else ``default_asset_class``."""
    settings = settings or operator_settings()
    return settings.symbols.get(symbol.upper(), settings.default_asset_class)


def cost_floor(symbol: str, settings: OperatorSettings | None = None) -> tuple[float, float]:
    """(fees, slippage) per fill, as fractions: the cheapest a contract for this symbol may assume."""
    settings = settings or operator_settings()
    floor = settings.costs[asset_class(symbol, settings)]
    return floor.fees, floor.slippage


def _num(value: float | int) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text.removesuffix(".0") if text.endswith(".0") else text


def _looser(value: float, floor: float, kind: str) -> bool:
    if math.isclose(value, floor, rel_tol=1e-9, abs_tol=1e-12):
        return False
    return value < floor if kind == "min" else value > floor


def enforce_operator_rules(strategy: Strategy, settings: OperatorSettings | None = None) -> Strategy:
    """The contract the cycle runs. Each gate, cost and split field the contract sets must be at least
    as strict as the operator's (a looser one raises ContractError, one problem per field); a field it
    leaves unset takes the operator's value; a stricter one is kept.

    The result still counts as set only what the contract set (``model_fields_set``), so saving it
    with ``exclude_unset`` writes the designer's choices and an unset field keeps meaning "the
    operator's value" when the settings change later. Applying it twice gives the same contract."""
    settings = settings or operator_settings()
    data = strategy.model_dump(exclude_unset=True)
    problems: list[tuple[str, str]] = []

    def check(path: str, model: BaseModel, floor: float | int, kind: str, reason: str) -> None:
        *parents, field = path.split(".")
        if field in model.model_fields_set:
            value = getattr(model, field)
            if _looser(value, floor, kind):
                problems.append((path, f"{_num(value)} is looser than {reason}"))
        else:
            _set(data, [*parents, field], floor)

    for gate_name in ("training", "backtest"):
        gate, floors = getattr(strategy.gates, gate_name), getattr(settings.gates, gate_name)
        for field in type(floors).model_fields:
            kind = "max" if field.startswith("max_") else "min"
            key = f"gates.{gate_name}.{field}"
            floor = getattr(floors, field)
            word = "maximum" if kind == "max" else "minimum"
            check(key, gate, floor, kind, f"the operator's {word} of {_num(floor)} ({settings.origin(key)})")

    cls = asset_class(strategy.symbol, settings)
    for field in ("fees", "slippage"):
        floor = getattr(settings.costs[cls], field)
        where = settings.origin(f"costs.{cls}.{field}")
        reason = f"the operator's floor of {_num(floor)} for {strategy.symbol} (asset class {cls}; {where})"
        check(f"risk_model.{field}", strategy.risk_model, floor, "min", reason)

    split = strategy.data
    if split.model_fields_set & {"train", "validation", "test"}:  # the parts are one choice
        if _looser(split.test, settings.min_held_out, "min"):
            problems.append(
                (
                    "data.test",
                    f"{_num(split.test)} is looser than the operator's minimum held-out fraction of "
                    f"{_num(settings.min_held_out)} ({settings.origin('min_held_out')})",
                )
            )
    else:
        operator_split = settings.default_split()
        for field in ("train", "validation", "test"):
            _set(data, ["data", field], getattr(operator_split, field))

    if problems:
        raise ContractError(strategy.strategy_id, problems)
    result = parse_strategy(data, strategy.strategy_id)
    # what the contract set stays what it set; the operator's values fill the rest
    for path in ("", "gates", "gates.training", "gates.backtest", "risk_model", "data"):
        before, after = strategy, result
        for part in path.split(".") if path else []:
            before, after = getattr(before, part), getattr(after, part)
        after.__pydantic_fields_set__ = set(before.model_fields_set)
    return result

"""Fuzz targets for the inputs that come from outside: contracts, rule trees, YAML, settings, bars files
and names. Shared by ``tests/test_fuzz.py`` (a few hundred cases, in CI) and ``bench/fuzz_inputs.py``
(thousands).

Each target pairs a hypothesis strategy with the project call that receives such input. The property is
the same everywhere: the call either accepts the input (and what it returns is sound: bars are clean, a
path lies inside its folder, a rule gives one boolean per bar) or refuses it with the module's own error
naming the field, file or row. Anything else, a library's exception escaping, a refusal that names
nothing, or one tiny input taking seconds, is a defect, recorded with the example that caused it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from strategy_contract import ContractError, load_strategy, parse_strategy, strategy_to_yaml
from strategy_contract.models import STRATEGY_ID_PATTERN, StrategyIdError, validate_strategy_id
from tasks.backtest.portfolio import FramePanel
from tasks.backtest.signals import entry_signal, exit_signal
from tasks.campaign.report import campaign_dir
from tasks.campaign.request import CampaignInputError, parse_request
from tasks.data import BAR_COLUMNS, DataError, load_bars
from tasks.export.files import resolve_contract
from tasks.features import feature_frame
from tasks.settings import BUILT_IN, SettingsError, load_settings
from tasks.storage import results_dir, strategy_file

SLOW_CASE_S = 5.0  # a small input that takes longer than this (on a busy 2-core box) is a denial of service

# --- the tally ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Outcomes of one target; ``defects`` keeps the first few failing examples with their reason."""

    target: str
    cases: int = 0
    accepted: int = 0
    rejected: int = 0
    unhandled: int = 0
    unsound: int = 0  # refused without a name, accepted something unsound, or too slow
    defects: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.unhandled == 0 and self.unsound == 0

    def _record(self, kind: str, example: Any, detail: str) -> None:
        if len(self.defects) < 5:
            with _long_ints():
                shown = repr(example)
            shown = shown if len(shown) <= 600 else shown[:600] + "...(cut)"
            self.defects.append(f"{self.target}: {kind}: {detail}\n    example: {shown}")


@dataclass(frozen=True)
class Target:
    """One input surface: a strategy of examples and how to run and judge one."""

    name: str
    examples: st.SearchStrategy
    run: Callable[[Any], Any]  # the project call; returns what it accepted
    own: tuple[type[BaseException], ...]  # the errors the module means to raise
    named: Callable[[BaseException, Any], bool]  # does the refusal name a field, file or row?
    sound: Callable[[Any, Any], str | None] = lambda result, example: None  # problem with an accepted result


def attempt(target: Target, tally: Tally, example: Any) -> None:
    """Run one example and count its outcome."""
    tally.cases += 1
    began = time.perf_counter()
    try:
        result = target.run(example)
    except target.own as exc:
        if target.named(exc, example):
            tally.rejected += 1
        else:
            tally.unsound += 1
            tally._record("refusal names no field, file or row", example, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - any other exception escaping is what we count
        tally.unhandled += 1
        where = traceback.extract_tb(exc.__traceback__)[-1]
        tally._record(
            "unhandled",
            example,
            f"{type(exc).__name__}: {str(exc)[:300]} (at {Path(where.filename).name}:{where.lineno})",
        )
    else:
        tally.accepted += 1
        problem = target.sound(result, example)
        if problem:
            tally.unsound += 1
            tally._record("accepted but unsound", example, problem)
    took = time.perf_counter() - began
    if took > SLOW_CASE_S:
        tally.unsound += 1
        tally._record("too slow", example, f"took {took:.1f} s")


def fuzz(target: Target, max_examples: int, seed: int = 0) -> Tally:
    """Run ``max_examples`` generated examples through the target (derandomised: the same every run)."""
    tally = Tally(target.name)

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.examples)
    def run(example: Any) -> None:
        attempt(target, tally, example)

    if seed:
        run._hypothesis_internal_use_seed = seed  # a different, still fixed, sequence
    run()
    return tally


# --- plain data -----------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**400]),
    st.integers(4301, 6000).map(lambda digits: 10**digits),  # too long for str() (and repr)
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "close", "ema_fast", "../x", "1e9999", "nan", "\x00", "é" * 5]),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def valid_contract_dict() -> dict:
    """A small contract that is valid as it stands: the base that mutations break."""
    return {
        "contract_version": 1,
        "strategy_id": "fuzz_base",
        "version": 1,
        "thesis": "Fast EMA above slow EMA while RSI is not overbought.",
        "markets": ["EURUSD"],
        "timeframes": ["1h"],
        "indicators": [
            {"id": "ema_fast", "type": "ema", "params": {"window": 5}},
            {"id": "ema_slow", "type": "ema", "params": {"window": 12}},
            {"id": "rsi_14", "type": "rsi", "params": {"window": 14}},
            {"id": "macd_1", "type": "macd", "params": {"fast": 6, "slow": 13, "signal": 4}},
            {"id": "atr_14", "type": "atr", "params": {"window": 14}},
        ],
        "fuzzy_sets": {"rsi_14": {"oversold": {"shape": "triangular", "points": [0, 20, 40]}}},
        "entry_rules": [{"left": "ema_fast", "op": "crosses_above", "right": "ema_slow"}],
        "exit_rules": [{"left": "rsi_14", "op": ">", "right": 70}],
        "risk_model": {"stop_loss": {"kind": "atr", "indicator": "atr_14", "multiple": 2.0}},
        "optimization_space": {
            "ema_fast.window": {"min": 3, "max": 10, "step": 1, "value": 5},
        },
    }


@st.composite
def valid_contracts(draw: st.DrawFn) -> dict:
    """Valid-shaped contracts: the base with legal variations of its values."""
    data = valid_contract_dict()
    data["strategy_id"] = draw(st.from_regex(r"[a-z][a-z0-9_]{1,20}[a-z0-9]", fullmatch=True))
    data["version"] = draw(st.integers(1, 50))
    data["markets"] = [draw(st.from_regex(r"[A-Z0-9][A-Z0-9._-]{0,8}", fullmatch=True))]
    data["timeframes"] = [draw(st.sampled_from(["1m", "15m", "1h", "4h", "1d"]))]
    fast = draw(st.integers(2, 30))
    data["indicators"][0]["params"]["window"] = fast
    data["indicators"][1]["params"]["window"] = draw(st.integers(2, 400))
    data["optimization_space"]["ema_fast.window"] = {"min": 2, "max": 30, "step": 1, "value": fast}
    data["risk_model"]["stop_loss"]["multiple"] = draw(st.floats(0.1, 20))
    data["risk_model"]["direction"] = draw(st.sampled_from(["long", "short"]))
    data["entry_rules"] = [draw(rule_trees(valid=True))]
    if draw(st.booleans()):
        data["data"] = {
            "train": 0.5,
            "validation": 0.25,
            "test": 0.25,
            "embargo_bars": draw(st.integers(0, 99)),
        }
    return data


def _paths(value: Any, here: tuple = ()) -> list[tuple]:
    """Every path into nested dicts and lists (the root included)."""
    out = [here]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _paths(inner, (*here, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += _paths(inner, (*here, i))
    return out


def _get(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def broken_contracts(draw: st.DrawFn) -> Any:
    """A valid contract with one to three things changed: a value replaced, a key dropped or added."""
    data = draw(valid_contracts())
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if not path:
            if action == "replace":
                return draw(json_like)  # a root that is not a contract at all
            continue
        parent = _get(data, path[:-1])
        if action == "replace":
            parent[path[-1]] = draw(json_like)
        elif action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(json_like)
        else:
            parent.append(draw(json_like))
    return data


contracts = st.one_of(valid_contracts(), broken_contracts(), broken_contracts(), json_like)


def contract_named(exc: BaseException, data: Any) -> bool:
    """Every problem names its field; only a root that is no mapping may be refused as a whole."""
    assert isinstance(exc, ContractError)
    if all(path for path, _ in exc.problems):
        return True
    return len(exc.problems) == 1 and not isinstance(data, dict)


def run_contract(data: Any) -> Any:
    return parse_strategy(copy.deepcopy(data))


def contract_sound(strategy: Any, example: Any) -> str | None:
    """An accepted contract can be saved and read back unchanged."""
    if isinstance(strategy, tuple):  # the rule target returns (strategy, entries, exits)
        strategy = strategy[0]
    try:
        again = parse_strategy(yaml.safe_load(strategy_to_yaml(strategy)))
    except Exception as exc:  # noqa: BLE001 - any failure to round-trip is the finding
        return f"cannot be saved and read back: {type(exc).__name__}: {str(exc)[:200]}"
    if again.model_dump() != strategy.model_dump():
        return "reads back different from what was saved"
    return None


# --- contracts as YAML files ----------------------------------------------------------------------

_SCRATCH = Path(tempfile.mkdtemp(prefix="stratlab-fuzz-"))


def scratch_file(name: str, content: bytes) -> Path:
    """Write ``content`` to a file of the fuzzer's scratch folder (one file per name, overwritten)."""
    path = _SCRATCH / name
    path.write_bytes(content)
    return path


@contextlib.contextmanager
def _long_ints() -> Iterator[None]:
    """Let str() write integers of any length (Python refuses past 4,300 digits), for the harness's
    own output: the YAML it writes and the examples it shows."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(limit)


def _dump(data: Any) -> str:
    with _long_ints():
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@st.composite
def contract_texts(draw: st.DrawFn) -> bytes:
    """Contracts written as YAML, some then cut short or with a stray character in them."""
    text = _dump(draw(contracts))
    cut = draw(st.sampled_from(["none", "none", "truncate", "insert"]))
    if cut == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif cut == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(list(":-[]{}&*!|>'\"%@`\t\n#,?"))) + text[at:]
    return text.encode("utf-8")


def run_contract_file(content: bytes) -> Any:
    return load_strategy(scratch_file("contract.yaml", content))


def file_named(exc: BaseException, example: Any) -> bool:
    """A contract file's refusal: each problem names its field, or the file when about the whole."""
    assert isinstance(exc, ContractError)
    return exc.source.endswith(".yaml") and (all(path for path, _ in exc.problems) or len(exc.problems) == 1)


# --- YAML documents of every kind -------------------------------------------------------------------


def _bomb(levels: int, fan: int, where: str) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * fan)}]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]")
    base = _dump(valid_contract_dict())
    return (
        base + "\n".join(lines) + "\n"
        if where == "extra"
        else base.replace(
            "thesis: Fast EMA above slow EMA while RSI is not overbought.", f"thesis: *l{levels}"
        )
        + "\n".join(lines).replace("l0:", "zz_l0:")
        + "\n"
    )


def _deep(form: str, n: int) -> str:
    if form == "flow list":
        return "[" * n + "]" * n
    if form == "flow map":
        return "{a: " * n + "1" + "}" * n
    return "a:\n" + "".join(" " * i + "b:\n" for i in range(1, n))  # block mappings


hazard_docs = st.one_of(
    # PyYAML's parser is quadratic in flow nesting until Python's recursion limit (about 2 s at 2,000
    # levels), so the deepest cases are few
    st.tuples(
        st.sampled_from(["flow list", "flow map", "block"]), st.sampled_from([10, 64, 65, 300, 2000])
    ).map(lambda t: _deep(*t)),
    st.tuples(st.integers(1, 7), st.integers(2, 10), st.sampled_from(["extra", "field"])).map(
        lambda t: _bomb(*t)
    ),
    st.just("a: &a [*a]\n"),
    st.just("&a [*a, *a]\n"),
    st.integers(1, 10_000).map(lambda n: "version: " + "9" * n + "\n"),
    st.integers(1, 400).map(lambda n: "thesis: 1e" + "9" * n + "\n"),
    st.sampled_from(
        [
            "",
            "---",
            "~",
            "null",
            "- a\n- b",
            "42",
            "'text'",
            "!!binary aGVsbG8=",
            "!!set {a, b}",
            "!!python/object:os.system {}",
            "!!python/name:os.system",
            "? [a, b]\n: c",
            "a: 1\na: 2",
            "%YAML 1.1\n---\na: 1",
            "--- a\n--- b",
            "*undefined",
            "a: !!timestamp 2020-01-01",
            "\ufeffstrategy_id: x",
            "a: 0x1F\nb: 0o17\nc: 1_000\nd: .inf\ne: -.nan",
            "a: 1\n\t b: 2",
        ]
    ),
)


@st.composite
def yaml_documents(draw: st.DrawFn) -> bytes:
    """Arbitrary text, arbitrary bytes (not UTF-8), and YAML's known hazards."""
    kind = draw(st.sampled_from(["text", "bytes", "hazard", "hazard", "valid+bytes"]))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "valid+bytes":
        return _dump(valid_contract_dict()).encode() + draw(st.binary(min_size=1, max_size=8))
    return draw(hazard_docs).encode("utf-8")


# --- operator settings (TOML) -------------------------------------------------------------------


toml_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: repr(x).replace("inf", "inf")),
    st.sampled_from(["nan", "inf", "-inf", "true", '"0.1"', "[]", "{}", "1979-05-27", "0x10", '"fx"', '""']),
)
toml_keys = st.sampled_from(
    [
        "min_held_out",
        "default_asset_class",
        "gates.training.min_accuracy",
        "gates.backtest.min_sharpe",
        "gates.backtest.min_trades",
        "gates.backtest.max_drawdown",
        "costs.fx.fees",
        "costs.fx.slippage",
        "costs.crypto.fees",
        "costs.Bad.fees",
        "symbols.EURUSD",
        "symbols.btc",
        "gates.typo",
        "unknown",
        "costs.fx",
        "symbols",
        "gates",
    ]
)


@st.composite
def settings_inputs(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A settings file (structured, or any text or bytes) and environment overrides."""
    kind = draw(st.sampled_from(["keys", "keys", "text", "bytes"]))
    if kind == "keys":
        lines = [f"{k} = {v}" for k, v in draw(st.lists(st.tuples(toml_keys, toml_values), max_size=5))]
        content = "\n".join(lines).encode()
    elif kind == "text":
        content = draw(st.text(max_size=120)).encode("utf-8", "surrogatepass")
    else:
        content = draw(st.binary(max_size=120))
    env_names = st.sampled_from(
        [
            "STRATLAB_MIN_HELD_OUT",
            "STRATLAB_GATES_BACKTEST_MIN_SHARPE",
            "STRATLAB_GATES_BACKTEST_MIN_TRADES",
            "STRATLAB_GATES_TYPO",
            "STRATLAB_COSTS_FX_FEES",
            "STRATLAB_COSTS__FEES",
            "STRATLAB_COSTS_X",
            "STRATLAB_SYMBOLS_BTC",
            "STRATLAB_SYMBOLS_",
            "STRATLAB_DEFAULT_ASSET_CLASS",
            "OTHER",
        ]
    )
    env_values = st.one_of(
        st.sampled_from(["0.3", "-1", "nan", "inf", "1e999", "fx", " ", "9" * 5000]), st.text(max_size=12)
    )
    environ = draw(st.dictionaries(env_names, env_values, max_size=3))
    return content, {k: v.replace("\x00", "") for k, v in environ.items()}


def run_settings(example: tuple[bytes, dict[str, str]]) -> Any:
    content, environ = example
    return load_settings(scratch_file("stratlab.toml", content), environ=environ)


def settings_named(exc: BaseException, example: Any) -> bool:
    assert isinstance(exc, SettingsError)
    return bool(exc.problems) and all(src and (key or src != BUILT_IN) for src, key, _ in exc.problems)


# --- market data files ----------------------------------------------------------------------------

_TIME_TEXTS = st.one_of(
    st.datetimes(
        min_value=pd.Timestamp("1990-01-01").to_pydatetime(),
        max_value=pd.Timestamp("2030-01-01").to_pydatetime(),
    ).map(str),
    st.sampled_from(
        [
            "2020-01-01",
            "2020-01-01T00:00:00+02:00",
            "2020-01-01 00:00:00-05:00",
            "2020-01-01T00:00:00Z",
            "9999-12-31",
            "0001-01-01",
            "1677-01-01",
            "not a time",
            "",
            "2020-13-45",
            "1577836800",
            "NaT",
            "2020-01-01 00:00:00 Europe/Paris",
            "01/02/2020",
            "２０２０-01-01",
        ]
    ),
)
_PRICES = st.one_of(
    st.floats(0.5, 2.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1e308, 1e-308, 10**30, "abc", "1,5", "", "1e999", True, None, "nan"]),
)


@st.composite
def bar_tables(draw: st.DrawFn) -> tuple[list[str], list[list[Any]]]:
    """A header and rows: mostly plausible bars with a few bad values, sometimes garbage."""
    columns = ["time", "open", "high", "low", "close", "volume"]
    if draw(st.integers(0, 4)) == 0:
        columns = draw(
            st.lists(
                st.sampled_from(
                    [
                        "time",
                        "Time",
                        "date",
                        "open",
                        "OPEN",
                        "high",
                        "low",
                        "close",
                        "Close",
                        "volume",
                        "x",
                        "",
                    ]
                ),
                max_size=8,
            )
        )
    n = draw(st.integers(0, 8))
    start = pd.Timestamp("2020-01-01")
    rows = []
    for i in range(n):
        base = 1.0 + 0.01 * i
        plausible = {
            "time": str(start + pd.Timedelta(hours=i)),
            "open": base,
            "high": base + 0.02,
            "low": base - 0.02,
            "close": base + 0.01,
            "volume": 100,
        }
        row = [plausible.get(c.lower(), 1.0) for c in columns]
        for _ in range(draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2]))):
            if columns:
                j = draw(st.integers(0, len(columns) - 1))
                row[j] = draw(_TIME_TEXTS) if columns[j].lower() in ("time", "date") else draw(_PRICES)
        rows.append(row)
    if rows and draw(st.booleans()):
        order = draw(st.permutations(range(len(rows))))  # unsorted
        rows = [rows[k] for k in order]
    if rows and draw(st.integers(0, 4)) == 0:
        rows.append(list(rows[0]))  # duplicate
    return columns, rows


def _csv_text(columns: list[str], rows: list[list[Any]]) -> str:
    lines = [",".join(columns)]
    lines += [",".join("" if v is None else str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["table", "table", "table", "latin-1", "utf-16", "bytes", "ragged"]))
    if kind == "bytes":
        return "csv", draw(st.binary(max_size=200))
    text = _csv_text(*draw(bar_tables()))
    if kind == "ragged":
        text += "2021-01-01,1,2\n1,2,3,4,5,6,7,8\n"
    if kind == "latin-1":
        return "csv", text.replace("time", "tíme", 1).encode("latin-1") + b"\xe9\xff"
    if kind == "utf-16":
        return "csv", text.encode("utf-16")
    return "csv", text.encode()


@st.composite
def parquet_files(draw: st.DrawFn) -> tuple[str, bytes]:
    columns, rows = draw(bar_tables())
    kind = draw(st.sampled_from(["typed", "typed", "text", "tz", "index", "corrupt"]))
    names = list(dict.fromkeys(columns))  # parquet needs unique names
    frame = pd.DataFrame([[row[columns.index(c)] for c in names] for row in rows], columns=names)
    for name in names:
        if name.lower() in ("time", "date") and kind in ("typed", "tz", "index"):
            try:
                frame[name] = pd.to_datetime(frame[name], errors="coerce", utc=kind == "tz", format="mixed")
            except (ValueError, TypeError):  # mixed offsets: a column of tz-aware objects, or text
                frame[name] = frame[name].map(lambda v: None if v is None else str(v))
        elif kind == "text" or frame[name].dtype == object:
            frame[name] = frame[name].map(lambda v: None if v is None else str(v))
    if kind == "index" and "time" in frame:
        frame = frame.set_index("time")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=kind == "index")
    data = buffer.getvalue()
    if kind == "corrupt":
        data = data[: draw(st.integers(0, len(data) - 1))]
    return "parquet", data


def run_bars(example: tuple[str, bytes]) -> pd.DataFrame:
    ext, content = example
    folder = _SCRATCH / "market"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / f"FUZZ_1h.{ext}").write_bytes(content)
    return load_bars("FUZZ", "1h", folder)


def bars_named(exc: BaseException, example: Any) -> bool:
    return str(exc).startswith(str(_SCRATCH / "market"))


def bars_sound(bars: pd.DataFrame, example: Any) -> str | None:
    """What every accepted bars frame must be: clean, sorted, positive, consistent."""
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex) or str(index.tz) != "UTC" or len(bars) == 0:
        return f"index is {type(index).__name__} tz={getattr(index, 'tz', None)} with {len(bars)} rows"
    if not index.is_monotonic_increasing or not index.is_unique:
        return "timestamps are unsorted or duplicated"
    if list(bars.columns) != list(BAR_COLUMNS) or any(bars[c].dtype != np.float64 for c in bars):
        return f"columns {list(bars.columns)} with dtypes {list(bars.dtypes)}"
    values = bars.to_numpy()
    if not np.isfinite(values).all():
        return "a value is NaN or infinite"
    if (values[:, :4] <= 0).any() or (bars["volume"] < 0).any():
        return "a price is not positive or a volume is negative"
    if (bars["high"] < bars[["open", "close", "low"]].max(axis=1)).any() or (
        bars["low"] > bars[["open", "close"]].min(axis=1)
    ).any():
        return "open or close outside [low, high]"
    return None


# --- rule trees -------------------------------------------------------------------------------------

RULE_REFS = [
    "open",
    "high",
    "low",
    "close",
    "volume",
    "ema_fast",
    "ema_slow",
    "ema_slow.value",
    "rsi_14",
    "macd_1",
    "macd_1.signal",
    "macd_1.hist",
    "atr_14",
    "fuzzy.rsi_14.oversold",
]
BAD_REFS = ["ema_fats", "model.prob_up", "fuzzy.rsi_14.overbought", "", "close.value", "../x", "CLOSE"]
OPS = [">", ">=", "<", "<=", "crosses_above", "crosses_below"]


def rule_trees(valid: bool) -> st.SearchStrategy:
    """Condition / AllOf / AnyOf trees; ``valid=False`` mixes in broken nodes at any depth."""
    number = st.one_of(st.floats(-1e6, 1e6), st.integers(-1000, 1000))
    condition = st.builds(
        lambda left, op, right: {"left": left, "op": op, "right": right},
        st.sampled_from(RULE_REFS),
        st.sampled_from(OPS),
        st.one_of(st.sampled_from(RULE_REFS), number),
    )
    leaves = condition
    if not valid:
        broken = st.one_of(
            st.builds(
                lambda left, op, right: {"left": left, "op": op, "right": right},
                st.one_of(st.sampled_from(BAD_REFS + RULE_REFS), scalars),
                st.one_of(st.sampled_from([*OPS, "==", "crosses", "", "and"]), scalars),
                st.one_of(st.sampled_from(BAD_REFS), scalars),
            ),
            st.fixed_dictionaries({"left": st.just("close")}),
            st.just({"all": []}),
            st.just({"any": []}),
            st.just({"all": [], "any": []}),
            st.just({"all": {"left": "close", "op": ">", "right": 1}}),
            json_like,
        )
        leaves = st.one_of(condition, broken)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        ),
        max_leaves=12,
    )


@st.composite
def rule_contracts(draw: st.DrawFn) -> tuple[dict, int]:
    """The base contract with fuzzed entry and exit trees (valid-shaped or broken), and the depth of
    a chain of ``all`` that replaces its entry rules (0: none). The chain is built when the case runs:
    hypothesis's own printer would overflow on it."""
    data = valid_contract_dict()
    valid = draw(st.booleans())
    data["entry_rules"] = draw(st.lists(rule_trees(valid), min_size=0 if not valid else 1, max_size=3))
    data["exit_rules"] = draw(st.lists(rule_trees(valid), max_size=3))
    chain = draw(st.integers(5, 3000)) if draw(st.integers(0, 20)) == 0 else 0
    return data, chain


_BARS = None


def _features() -> pd.DataFrame:
    """A small bar frame's features for the base contract, computed once."""
    global _BARS
    if _BARS is None:
        n = 80
        rng = np.random.default_rng(0)
        close = 1.1 + np.cumsum(rng.normal(0, 0.002, n))
        bars = pd.DataFrame(
            {"open": close, "high": close + 0.003, "low": close - 0.003, "close": close, "volume": 1.0},
            index=pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC", name="time"),
        )
        _BARS = feature_frame(bars, parse_strategy(valid_contract_dict()))
    return _BARS


def run_rules(example: tuple[dict, int]) -> tuple[Any, np.ndarray, np.ndarray]:
    """Validate the contract, then evaluate its trees on the bars, as a backtest does."""
    data, chain = copy.deepcopy(example[0]), example[1]
    if chain:
        node: Any = {"left": "close", "op": ">", "right": 1.0}
        for _ in range(chain):
            node = {"all": [node]}
        data["entry_rules"] = [node]
    strategy = parse_strategy(data)
    panel = FramePanel(_features())
    return strategy, entry_signal(strategy.entry_rules, panel), exit_signal(strategy.exit_rules, panel)


def rules_sound(result: tuple[Any, np.ndarray, np.ndarray], data: Any) -> str | None:
    """One boolean per bar from each tree, and the contract round-trips."""
    n = len(_features())
    for name, signal in zip(("entry", "exit"), result[1:], strict=True):
        if signal.shape != (n, 1) or signal.dtype != bool:
            return f"{name} signal has shape {signal.shape} and dtype {signal.dtype}, not ({n}, 1) bool"
    return contract_sound(result, data)


# --- names and paths from outside ---------------------------------------------------------------

LOOKALIKES = [
    "\u2215",
    "\uff0e",
    "\u2024",
    "\u0430",
    "\uff41",
    "\u200b",
    "\u00e9",
    "\u0130",
    "\u212a",
    "\ufe63",
]
TRICKS = [
    "",
    ".",
    "..",
    "../x",
    "a/../b",
    "/etc/passwd",
    "~/x",
    "C:\\x",
    "abc\\..\\d",
    "abc\x00def",
    "abc\n",
    "abc\r",
    " abc",
    "abc ",
    "con",
    "nul",
    "a" * 200,
    "abc.yaml",
    "abc/",
    "abc@",
    "@abc",
    "abc@@x",
    "abc@../x",
    "abc@spx_1d",
    "ab",
    "a" * 64,
    "a" * 65 + "@spx_1d",
    "ABC",
    "ab-c",
    "%2e%2e",
    "abc\u2215x",
]
names = st.one_of(
    st.sampled_from(TRICKS),
    st.from_regex(STRATEGY_ID_PATTERN, fullmatch=True),
    st.text(alphabet=st.sampled_from([*"abz09_@.-/\\:~ \t\n\x00", *LOOKALIKES]), max_size=90),
    st.text(max_size=40),
    st.tuples(
        st.from_regex(r"[a-z][a-z0-9_]{2,10}", fullmatch=True),
        st.sampled_from(["/..", "\x00", "\n", "\u2215", "."]),
    ).map("".join),
)


def _inside(path: Path, folder: Path, name: str) -> str | None:
    if path.resolve().parent != folder.resolve() or not re.fullmatch(r"[a-z0-9_@.\-]+", path.name):
        return f"{path} is not a plain file name inside {folder}"
    if not path.name.startswith(name) or len(path.name) > 100:
        return f"{path.name!r} is not the name given ({name!r})"
    return None


def run_names(name: Any) -> list[tuple[str, Path]]:
    """Every place a name from outside becomes a path or a lookup. Each must accept or refuse alike."""
    folder = _SCRATCH / "strategies"
    folder.mkdir(exist_ok=True)
    validate_strategy_id(name)
    paths = [("strategy_file", strategy_file(name, folder)), ("results_dir", results_dir(name, folder))]
    os.environ["STRATLAB_STRATEGIES_DIR"] = str(folder)
    with contextlib.suppress(FileNotFoundError):  # a well-formed name without a contract: a lookup miss
        resolve_contract(name)
    return paths


def run_campaign_names(name: Any) -> list[tuple[str, Path]]:
    os.environ["STRATLAB_REPORTS_DIR"] = str(_SCRATCH / "reports")
    return [("campaign_dir", campaign_dir(name))]


def run_market_names(name: Any) -> Any:
    """A market from a form: as a campaign request's SYMBOL:timeframe, and as bars to load."""
    folder = _SCRATCH / "names-market"
    folder.mkdir(exist_ok=True)
    parse_request({"prompt": "fuzz", "markets": [f"{name}:1h"]})
    parse_request({"prompt": "fuzz", "markets": [f"EURUSD:{name}"]})
    return load_bars(name, "1h", folder)


def run_market_contract(name: Any) -> Any:
    """A symbol from the sweep or cycle form: the contract run on that market gets a derived id."""
    strategy = parse_strategy(valid_contract_dict()).on_market(str(name).upper(), "1h")
    return [("on_market", strategy_file(strategy.strategy_id, _SCRATCH / "strategies"))]


def names_sound(result: Any, name: Any) -> str | None:
    if not isinstance(result, list):
        return None
    for what, path in result:
        folder = _SCRATCH / ("reports/campaigns" if what == "campaign_dir" else "strategies")
        shown = name if what != "on_market" else path.stem.split("@")[0]
        problem = _inside(path, folder, shown)
        if problem:
            return f"{what}: {problem}"
    return None


def names_named(exc: BaseException, name: Any) -> bool:
    text = str(exc)
    return bool(re.match(r"^(strategy_id|campaign id|markets\[0\]|[^:]+: invalid strategy contract|/)", text))


# --- the targets --------------------------------------------------------------------------------------

TARGETS: list[Target] = [
    Target(
        "contracts (Python data)", contracts, run_contract, (ContractError,), contract_named, contract_sound
    ),
    Target(
        "contracts (YAML files)",
        contract_texts(),
        run_contract_file,
        (ContractError,),
        file_named,
        contract_sound,
    ),
    Target(
        "rule trees (validate + evaluate)",
        rule_contracts(),
        run_rules,
        (ContractError,),
        lambda exc, example: contract_named(exc, example[0]),
        rules_sound,
    ),
    Target(
        "YAML documents", yaml_documents(), run_contract_file, (ContractError,), file_named, contract_sound
    ),
    Target("settings (TOML + env)", settings_inputs(), run_settings, (SettingsError,), settings_named),
    Target("bars CSV", csv_files(), run_bars, (DataError,), bars_named, bars_sound),
    Target("bars Parquet", parquet_files(), run_bars, (DataError,), bars_named, bars_sound),
    Target(
        "names: strategy ids, files, exports", names, run_names, (StrategyIdError,), names_named, names_sound
    ),
    Target("names: campaign ids", names, run_campaign_names, (CampaignInputError,), names_named, names_sound),
    Target(
        "names: markets (campaign form, bars)",
        names,
        run_market_names,
        (CampaignInputError, DataError),
        lambda exc, n: names_named(exc, n) or str(exc).startswith(str(_SCRATCH)),
    ),
    Target(
        "names: symbol of a sweep/cycle (on_market)",
        names,
        run_market_contract,
        (ContractError,),
        contract_named,
        names_sound,
    ),
]

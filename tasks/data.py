"""Market data: find, read and validate OHLCV bars.

Every strategy result depends on the bars it was computed from, so bad data must fail loudly and
early, with a message that says which file, which row and how to fix it, instead of producing a
plausible-looking but wrong backtest. Files live in one folder as ``<SYMBOL>_<timeframe>.parquet``
or ``.csv``; shipped files are described in that folder's ``provenance.json``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

DATA_DIR: Path = Path(__file__).resolve().parents[1] / "data" / "market"
DATA_DIR_ENV = "STRATLAB_DATA_DIR"
PROVENANCE_FILE = "provenance.json"

PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = (*PRICE_COLUMNS, "volume")
TIME_NAMES = ("time", "timestamp", "date", "datetime")
SUFFIXES = (".parquet", ".csv")

_FILE_RE = re.compile(r"^(?P<symbol>.+)_(?P<timeframe>[A-Za-z0-9]+)\.(?P<ext>parquet|csv)$", re.IGNORECASE)
_ISO_HINT = "write every timestamp in one format, e.g. ISO 8601 '2020-01-03 00:00:00' (UTC if no offset)"
_ROW_FIX = "fix or drop that row"

# Row checks in reporting order: (category, how to fix). A row is reported under its first failing check.
_CHECKS: dict[str, str] = {
    "missing timestamp": _ISO_HINT,
    "missing price": "fill in the value or drop that row",
    "infinite value": _ROW_FIX,
    "missing volume": "fill it in (0 if unknown), drop that row, or drop the volume column",
    "non-positive price": _ROW_FIX,
    "negative volume": _ROW_FIX,
    "high < low": _ROW_FIX,
    "open outside [low, high]": _ROW_FIX,
    "close outside [low, high]": _ROW_FIX,
    "unsorted timestamp": "sort the rows by time (oldest first)",
    "duplicate timestamp": "keep one bar per timestamp",
}


class DataError(ValueError):
    """Bad or missing market data; the message names the file, the row and the fix."""


class DatasetInfo(BaseModel):
    """One bars file as seen by ``list_datasets``: what it holds and where it came from."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    timeframe: str
    path: Path
    rows: int
    start: datetime
    end: datetime
    sha256: str
    source: str
    license: str


def data_dir() -> Path:
    """The bars folder: $STRATLAB_DATA_DIR if set (read per call, so tests can redirect it), else DATA_DIR."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else DATA_DIR


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, to tie a result to the exact file it used."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def frame_sha256(df: pd.DataFrame) -> str:
    """Stable SHA-256 of bars' content (UTC timestamps, column names, float64 values).

    Unlike ``file_sha256`` it does not change when the same bars are stored differently (CSV vs
    Parquet, compression, pandas version), so it identifies the data a result was computed from.
    """
    if not isinstance(df.index, pd.DatetimeIndex):
        raise TypeError("frame_sha256 expects bars with a DatetimeIndex (as returned by load_bars)")
    index = df.index if df.index.tz is not None else df.index.tz_localize("UTC")
    stamps = index.tz_convert("UTC").as_unit("ns").asi8
    digest = hashlib.sha256(b"stratlab-bars-v1\n")
    digest.update(json.dumps([str(c) for c in df.columns]).encode())
    digest.update(len(df).to_bytes(8, "little"))
    digest.update(np.ascontiguousarray(stamps, dtype="<i8").tobytes())
    for column in df.columns:
        values = df[column].to_numpy(dtype="float64", na_value=np.nan)
        values = np.where(np.isnan(values), np.nan, values + 0.0)  # one NaN bit pattern, -0.0 -> 0.0
        digest.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
    return digest.hexdigest()


def bar_problems(bars: pd.DataFrame) -> pd.Series:
    """Category of the first failed check for each row ('' if the row is fine).

    ``bars`` has a DatetimeIndex (NaT for unreadable timestamps) and float columns open, high, low,
    close, volume. ``validate_bars`` reports the first flagged row; curation scripts use this to
    drop bad rows and count why.
    """
    times = pd.Series(bars.index, dtype=bars.index.dtype).reset_index(drop=True)
    o, h, lo, c, v = (bars[col].to_numpy(dtype="float64", na_value=np.nan) for col in BAR_COLUMNS)
    prices = np.column_stack([o, h, lo, c])
    with np.errstate(invalid="ignore"):
        masks = {
            "missing timestamp": times.isna().to_numpy(),
            "missing price": np.isnan(prices).any(axis=1),
            "infinite value": np.isinf(prices).any(axis=1) | np.isinf(v),
            "missing volume": np.isnan(v),
            "non-positive price": (prices <= 0).any(axis=1),
            "negative volume": v < 0,
            "high < low": h < lo,
            "open outside [low, high]": (o < lo) | (o > h),
            "close outside [low, high]": (c < lo) | (c > h),
            "unsorted timestamp": (times < times.shift()).to_numpy(),
            "duplicate timestamp": (times.duplicated() & times.notna()).to_numpy(),
        }
    categories = np.select(list(masks.values()), list(masks), default="")
    return pd.Series(categories, index=bars.index, name="problem", dtype=object)


def validate_bars(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check bars and return them clean: float64 open/high/low/close/volume on a UTC index named "time".

    Raises DataError naming ``source`` and the first offending row (1-based, as in the file), so a
    user can find and fix it. Column names are case-insensitive; the time may be a column named
    time/timestamp/date/datetime or the index; tz-naive times are taken as UTC; volume defaults to 0.
    """
    if len(df.columns) == 0 and len(df) == 0:
        raise DataError(f"{source}: file is empty; add a header (time,open,high,low,close,volume) and rows")
    columns = _columns_by_name(df, source)
    raw_time = _time_values(df, columns, source)
    if len(df) == 0:
        raise DataError(f"{source}: no data rows, only a header; add bars or remove the file")

    times = _parse_times(raw_time, source)
    values: dict[str, np.ndarray] = {}
    non_numeric = np.zeros(len(df), dtype=bool)
    raw_values: dict[str, pd.Series] = {}
    for name in BAR_COLUMNS:
        if name not in columns:
            values[name] = np.zeros(len(df))  # volume is optional
            continue
        raw = df[columns[name]].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
            values[name] = raw.to_numpy(dtype="float64", na_value=np.nan)
        else:
            parsed = pd.to_numeric(raw, errors="coerce")
            values[name] = parsed.to_numpy(dtype="float64", na_value=np.nan)
            bad = (parsed.isna() & raw.notna()).to_numpy()
            if bad.any():
                raw_values[name] = raw
                non_numeric |= bad

    bars = pd.DataFrame(values, index=pd.DatetimeIndex(times, name="time"))
    problems = bar_problems(bars).to_numpy()
    flagged = (problems != "") | non_numeric
    if flagged.any():
        pos = int(np.argmax(flagged))
        raise DataError(
            _row_message(source, bars, pos, problems[pos], raw_time, raw_values, int(flagged.sum()))
        )
    return bars


def read_bars_file(path: Path) -> pd.DataFrame:
    """Read a user's CSV or Parquet bars file and validate it (see ``validate_bars``)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataError(f"{source}: file not found; check the path")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df = _read_csv(path, source)
    elif suffix in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(path)
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise DataError(
                f"{source}: not a readable Parquet file ({exc}); re-export it or use CSV"
            ) from exc
        if isinstance(df.index, pd.RangeIndex):
            df = df.reset_index(drop=True)
    else:
        raise DataError(f"{source}: unsupported file type {path.suffix!r}; save the bars as .csv or .parquet")
    return validate_bars(df, source)


def list_datasets(directory: Path | None = None) -> list[DatasetInfo]:
    """Every ``<SYMBOL>_<timeframe>.parquet|.csv`` in the folder, with size, span, hash and origin.

    Shipped files get source/license from provenance.json; a file whose hash no longer matches is
    marked modified. A broken user file raises DataError rather than being skipped silently.
    """
    folder = _existing_dir(directory)
    provenance = _load_provenance(folder)
    infos = []
    for path, symbol, timeframe in _dataset_files(folder):
        sha = file_sha256(path)
        entry = provenance.get(path.name)
        if entry is None:
            source, license_ = "user file", "unknown"
        else:
            source = f"{entry.get('source_package', '?')} {entry.get('package_version', '?')}"
            source += f" ({entry.get('source_file', '?')})"
            if entry.get("sha256") != sha:
                source += f" (modified: sha256 differs from {PROVENANCE_FILE})"
            license_ = str(entry.get("license", "unknown"))
        rows, start, end = _extent(path)
        infos.append(
            DatasetInfo(
                symbol=symbol,
                timeframe=timeframe,
                path=path,
                rows=rows,
                start=start,
                end=end,
                sha256=sha,
                source=source,
                license=license_,
            )
        )
    return infos


def available_markets(directory: Path | None = None) -> list[tuple[str, str]]:
    """(symbol, timeframe) of every bars file in the folder, without reading them: a request can be
    checked before anything runs."""
    return [(symbol, timeframe) for _, symbol, timeframe in _dataset_files(_existing_dir(directory))]


def load_bars(symbol: str, timeframe: str, directory: Path | None = None) -> pd.DataFrame:
    """Validated bars for ``symbol`` (case-insensitive) and ``timeframe`` (exact, "1m" is not "1M")."""
    folder = _existing_dir(directory)
    files = _dataset_files(folder)
    matches = [p for p, sym, tf in files if sym.upper() == symbol.upper() and tf == timeframe]
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise DataError(f"{folder}: several files hold {symbol} {timeframe} ({names}); keep only one")
    if not matches:
        available = [f"{sym}_{tf}" for _, sym, tf in files]
        by_upper = {key.upper(): key for key in available}
        close = difflib.get_close_matches(f"{symbol}_{timeframe}".upper(), list(by_upper), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(by_upper[c] for c in close)}?" if close else ""
        listing = ", ".join(available) if available else "none"
        raise DataError(
            f"{folder}: no bars for symbol {symbol!r} timeframe {timeframe!r}; available: {listing}{hint}"
            f" (to add data, put {symbol.upper()}_{timeframe}.csv or .parquet in that folder)"
        )
    return read_bars_file(matches[0])


# --- helpers -------------------------------------------------------------------------------------------


def _existing_dir(directory: Path | None) -> Path:
    folder = Path(directory) if directory is not None else data_dir()
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder does not exist; create it or set ${DATA_DIR_ENV}")
    return folder


def _dataset_files(folder: Path) -> list[tuple[Path, str, str]]:
    found = []
    for path in sorted(folder.iterdir()):
        match = _FILE_RE.match(path.name)
        if match and path.is_file():
            found.append((path, match["symbol"], match["timeframe"]))
    return found


def _load_provenance(folder: Path) -> dict[str, dict]:
    path = folder / PROVENANCE_FILE
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path}: unreadable ({exc}); regenerate it with scripts/curate_market_data.py"
        ) from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "file" in e for e in entries):
        raise DataError(f"{path}: expected a list of entries with a 'file' key; regenerate it")
    return {str(e["file"]): e for e in entries}


def _extent(path: Path) -> tuple[int, datetime, datetime]:
    """Rows, first and last timestamp; for Parquet read from the time column alone (fast)."""
    if path.suffix.lower() == ".parquet":
        try:
            parquet = pq.ParquetFile(path)
            names = [n for n in parquet.schema_arrow.names if n.strip().lower() in TIME_NAMES]
            rows = parquet.metadata.num_rows
            if len(names) == 1 and pa.types.is_timestamp(parquet.schema_arrow.field(names[0]).type) and rows:
                times = parquet.read(columns=names).column(0).to_pandas()
                if not times.isna().any():
                    start, end = times.min(), times.max()
                    if start.tzinfo is None:
                        start, end = start.tz_localize("UTC"), end.tz_localize("UTC")
                    return (
                        rows,
                        start.tz_convert("UTC").to_pydatetime(),
                        end.tz_convert("UTC").to_pydatetime(),
                    )
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc}); regenerate or remove it") from exc
    bars = read_bars_file(path)
    return len(bars), bars.index[0].to_pydatetime(), bars.index[-1].to_pydatetime()


def _read_csv(path: Path, source: str) -> pd.DataFrame:
    try:
        header = pd.read_csv(path, nrows=0)
        as_text = {c: str for c in header.columns if str(c).strip().lower() in TIME_NAMES}
        return pd.read_csv(path, dtype=as_text)  # parse timestamps ourselves, from the original text
    except pd.errors.EmptyDataError as exc:
        raise DataError(
            f"{source}: file is empty; add a header (time,open,high,low,close,volume) and rows"
        ) from exc
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{source}: not valid CSV ({exc}); every row needs the same number of fields"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: not UTF-8 text ({exc}); save the file as UTF-8 CSV") from exc


def _columns_by_name(df: pd.DataFrame, source: str) -> dict[str, str]:
    """Map lower-case name -> actual column, refusing names that differ only in case."""
    columns: dict[str, str] = {}
    for col in df.columns:
        key = str(col).strip().lower()
        if key in columns:
            raise DataError(
                f"{source}: columns {columns[key]!r} and {col!r} clash (names are case-insensitive)"
            )
        columns[key] = col
    missing = [c for c in PRICE_COLUMNS if c not in columns]
    if missing:
        found = ", ".join(str(c) for c in df.columns) or "none"
        raise DataError(
            f"{source}: missing required column(s) {', '.join(missing)} (found: {found}); "
            "the header needs open, high, low, close (any case), a time column and optionally volume"
        )
    return columns


def _time_values(df: pd.DataFrame, columns: dict[str, str], source: str) -> pd.Series:
    named = [columns[n] for n in TIME_NAMES if n in columns]
    if len(named) > 1:
        raise DataError(
            f"{source}: several time columns ({', '.join(map(str, named))}); merge them into one 'time'"
        )
    if named:
        return df[named[0]].reset_index(drop=True)
    index_name = str(df.index.name or "").strip().lower()
    if isinstance(df.index, pd.DatetimeIndex) or index_name in TIME_NAMES:
        return pd.Series(df.index, dtype=df.index.dtype)
    found = ", ".join(str(c) for c in df.columns)
    raise DataError(
        f"{source}: missing required column time (found: {found}); "
        f"add a column named one of {', '.join(TIME_NAMES)}"
    )


def _parse_times(raw: pd.Series, source: str) -> pd.Series:
    """UTC timestamps (ns), NaT where a value is missing, unreadable or out of pandas' range."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        times = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        times = raw.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(raw.dtype):
        raise DataError(
            f"{source}: row 1: numeric timestamp {raw.iloc[0]!r} is ambiguous (seconds? milliseconds?); "
            + _ISO_HINT
        )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format" is noise here; bad rows are reported
            try:  # the format pandas infers from the first row, else any ISO 8601 mix, else mark bad rows
                times = pd.to_datetime(raw, utc=True, errors="raise")
            except (ValueError, TypeError, OverflowError):
                try:
                    times = pd.to_datetime(raw, utc=True, errors="raise", format="ISO8601")
                except (ValueError, TypeError, OverflowError):
                    times = pd.to_datetime(raw, utc=True, errors="coerce")
    lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    times = times.where((times >= lo) & (times <= hi))
    return times.dt.as_unit("ns")


def _parses(value: object) -> bool:
    try:
        pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _num(value: float) -> str:
    return repr(float(value))


def _row_message(
    source: str,
    bars: pd.DataFrame,
    pos: int,
    category: str,
    raw_time: pd.Series,
    raw_values: dict[str, pd.Series],
    n_bad: int,
) -> str:
    row = bars.iloc[pos]
    times = bars.index
    bad_text = [c for c, raw in raw_values.items() if pd.isna(row[c]) and not pd.isna(raw.iloc[pos])]
    if bad_text:
        detail = "; ".join(f"{c} value {str(raw_values[c].iloc[pos])!r} is not a number" for c in bad_text)
        fix = _ROW_FIX
    else:
        fix = _CHECKS[category]
        prices = {c: row[c] for c in PRICE_COLUMNS}
        if category == "missing timestamp":
            raw = raw_time.iloc[pos]
            if pd.isna(raw):
                detail = "timestamp is empty"
            elif _parses(raw):
                detail = f"timestamp {str(raw)!r} is outside the supported years 1678-2261"
                fix = _ROW_FIX
            else:
                detail = f"unparseable timestamp {str(raw)!r}"
        elif category == "missing price":
            detail = f"{', '.join(c for c, v in prices.items() if np.isnan(v))} is missing (NaN)"
        elif category == "infinite value":
            detail = f"{', '.join(c for c in BAR_COLUMNS if np.isinf(row[c]))} is infinite"
        elif category == "missing volume":
            detail = "volume is missing (NaN)"
        elif category == "non-positive price":
            col = next(c for c, v in prices.items() if v <= 0)
            detail = f"{col} {_num(prices[col])} <= 0 (prices must be positive)"
        elif category == "negative volume":
            detail = f"volume {_num(row['volume'])} < 0"
        elif category == "high < low":
            detail = f"high {_num(row['high'])} < low {_num(row['low'])}"
        elif category in ("open outside [low, high]", "close outside [low, high]"):
            col = category.split()[0]
            detail = f"{col} {_num(row[col])} outside [low {_num(row['low'])}, high {_num(row['high'])}]"
        elif category == "unsorted timestamp":
            detail = f"timestamp is earlier than row {pos}'s ({times[pos - 1]})"
        else:  # duplicate timestamp
            first = int(np.argmax(times[:pos] == times[pos]))
            detail = f"duplicate timestamp (same as row {first + 1})"
    where = f"row {pos + 1}" if pd.isna(times[pos]) else f"row {pos + 1} ({times[pos]})"
    more = f" ({n_bad} rows have problems)" if n_bad > 1 else ""
    return f"{source}: {where}: {detail}; {fix}{more}"


# --- market data for a cycle ---------------------------------------------------------------------------


@dataclass
class Market:
    """Validated bars of one symbol and timeframe, with the hash a result records to name its data."""

    symbol: str
    timeframe: str
    bars: pd.DataFrame
    sha256: str
    source: str


def load_market(symbol: str, timeframe: str, directory: Path | None = None) -> Market:
    bars = load_bars(symbol, timeframe, directory)
    folder = Path(directory) if directory is not None else data_dir()
    return Market(
        symbol=symbol, timeframe=timeframe, bars=bars, sha256=frame_sha256(bars), source=str(folder)
    )


def median_abs_return(bars: pd.DataFrame, stop: int) -> float:
    """Typical one-bar move over the first `stop` bars: how a designer scales thresholds without
    looking at held-out data."""
    returns = bars["close"].iloc[:stop].pct_change().abs().dropna()
    return float(returns.median()) if len(returns) else 0.0


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import uncached_step  # noqa: E402

load_market_data = uncached_step(load_market, "load-data")

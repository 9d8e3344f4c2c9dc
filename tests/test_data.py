"""Tests for tasks.data: the shipped datasets and the validation of user files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.data import (
    DATA_DIR,
    DataError,
    DatasetInfo,
    data_dir,
    file_sha256,
    frame_sha256,
    list_datasets,
    load_bars,
    read_bars_file,
    validate_bars,
)

PROVENANCE = json.loads((DATA_DIR / "provenance.json").read_text(encoding="utf-8"))
EXPECTED = {
    ("EURUSD", "1h"),
    *((s, "1d") for s in ("AAPL", "AMZN", "GOOG", "META", "NFLX", "NVDA", "SPX", "IXIC")),
}
HEADER = "time,open,high,low,close,volume\n"
GOOD_ROW = "2020-01-0{d},1.0,1.1,0.9,1.05,100\n"


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- shipped data ------------------------------------------------------------------------------------


def test_provenance_covers_expected_datasets() -> None:
    assert {(e["symbol"], e["timeframe"]) for e in PROVENANCE} == EXPECTED
    for entry in PROVENANCE:
        assert entry["file"] == f"{entry['symbol']}_{entry['timeframe']}.parquet"
        assert entry["license"] in {"MIT", "NCSA"}
        assert entry["rows"] > 1000 and entry["dropped_rows"] >= 0


@pytest.mark.parametrize("entry", PROVENANCE, ids=lambda e: e["file"])
def test_shipped_dataset_loads_and_matches_provenance(entry: dict) -> None:
    path = DATA_DIR / entry["file"]
    assert file_sha256(path) == entry["sha256"]
    bars = load_bars(entry["symbol"].lower(), entry["timeframe"])  # symbol is case-insensitive
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert all(dtype == np.float64 for dtype in bars.dtypes)
    assert bars.index.name == "time" and str(bars.index.tz) == "UTC"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    assert len(bars) == entry["rows"]
    assert bars.index[0] == pd.Timestamp(entry["start"]) and bars.index[-1] == pd.Timestamp(entry["end"])
    assert (bars["high"] >= bars[["open", "close", "low"]].max(axis=1)).all()
    assert (bars["low"] > 0).all()


def test_list_datasets_finds_all_shipped() -> None:
    infos = list_datasets()
    assert {(i.symbol, i.timeframe) for i in infos} == EXPECTED
    by_file = {e["file"]: e for e in PROVENANCE}
    for info in infos:
        entry = by_file[info.path.name]
        assert isinstance(info, DatasetInfo)
        assert info.sha256 == entry["sha256"] and info.license == entry["license"]
        assert info.rows == entry["rows"]
        assert info.start == pd.Timestamp(entry["start"]) and info.end == pd.Timestamp(entry["end"])
        assert entry["source_package"] in info.source and "modified" not in info.source


def test_list_datasets_user_file_and_modified_shipped_file(tmp_path: Path) -> None:
    shutil.copy(DATA_DIR / "provenance.json", tmp_path)
    shutil.copy(DATA_DIR / "SPX_1d.parquet", tmp_path)
    bars = load_bars("SPX", "1d").iloc[:10]
    bars.to_parquet(tmp_path / "IXIC_1d.parquet")  # listed in provenance, but different bytes
    _csv(tmp_path, "MYCOIN_4h.csv", HEADER + GOOD_ROW.format(d=1) + GOOD_ROW.format(d=2))
    _csv(tmp_path, "notes.csv", "not,a,dataset\n")  # no <SYMBOL>_<timeframe> name: ignored
    infos = {i.symbol: i for i in list_datasets(tmp_path)}
    assert set(infos) == {"SPX", "IXIC", "MYCOIN"}
    assert infos["MYCOIN"].source == "user file" and infos["MYCOIN"].license == "unknown"
    assert infos["MYCOIN"].rows == 2 and infos["MYCOIN"].end == pd.Timestamp("2020-01-02", tz="UTC")
    assert "modified" in infos["IXIC"].source and infos["IXIC"].rows == 10
    assert "modified" not in infos["SPX"].source


def test_data_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_dir() == DATA_DIR
    _csv(tmp_path, "ABC_1d.csv", HEADER + GOOD_ROW.format(d=1))
    monkeypatch.setenv("STRATLAB_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    assert len(load_bars("abc", "1d")) == 1


def test_unknown_dataset_lists_available_with_hint() -> None:
    with pytest.raises(DataError) as err:
        load_bars("APPL", "1d")
    message = str(err.value)
    assert "'APPL'" in message and "EURUSD_1h" in message and "did you mean AAPL_1d" in message
    with pytest.raises(DataError, match="did you mean EURUSD_1h"):
        load_bars("EURUSD", "1H")


def test_frame_sha256_is_content_hash(tmp_path: Path) -> None:
    bars = load_bars("NVDA", "1d")
    digest = frame_sha256(bars)
    assert digest == frame_sha256(bars.copy())
    bars.reset_index().to_csv(tmp_path / "NVDA_1d.csv", index=False)  # other storage, same content
    assert frame_sha256(read_bars_file(tmp_path / "NVDA_1d.csv")) == digest
    changed = bars.copy()
    changed.iloc[5, 3] += 0.01
    assert frame_sha256(changed) != digest
    assert frame_sha256(bars.iloc[:-1]) != digest


# --- user files --------------------------------------------------------------------------------------


def test_good_user_csv_naive_times_upper_case_columns(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "MINE_1h.csv",
        "Timestamp,OPEN,HIGH,LOW,CLOSE\n"
        "2021-03-01 09:00:00,10,11,9.5,10.5\n"
        "2021-03-01 10:00:00,10.5,12,10,11\n",
    )
    bars = read_bars_file(path)
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert bars.index.name == "time" and str(bars.index.tz) == "UTC"
    assert bars.index[0] == pd.Timestamp("2021-03-01 09:00", tz="UTC")
    assert bars["volume"].tolist() == [0.0, 0.0] and bars["close"].tolist() == [10.5, 11.0]
    assert bars.dtypes.eq(np.float64).all()


def test_user_parquet_with_time_index_and_offsets(tmp_path: Path) -> None:
    index = pd.DatetimeIndex(["2021-03-01 09:00", "2021-03-01 10:00"], name="Date").tz_localize(
        "Europe/Berlin"
    )
    frame = pd.DataFrame(
        {"Open": [1, 2], "High": [2, 3], "Low": [1, 1.5], "Close": [1.5, 2.5], "Volume": [5, 6]}
    )
    frame.index = index
    frame.to_parquet(tmp_path / "X_1h.parquet")
    bars = read_bars_file(tmp_path / "X_1h.parquet")
    assert bars.index[0] == pd.Timestamp("2021-03-01 08:00", tz="UTC")
    assert bars["volume"].tolist() == [5.0, 6.0]


BAD_FILES = {
    "missing_column": (
        HEADER.replace(",low", "") + "2020-01-01,1.0,1.1,1.05,100\n",
        None,
        ["low", "missing"],
    ),
    "unsorted": (HEADER + GOOD_ROW.format(d=2) + GOOD_ROW.format(d=1), 2, ["earlier", "sort"]),
    "duplicate": (HEADER + GOOD_ROW.format(d=1) + GOOD_ROW.format(d=1), 2, ["duplicate timestamp"]),
    "nan": (HEADER + GOOD_ROW.format(d=1) + "2020-01-02,1.0,,0.9,1.05,100\n", 2, ["high", "missing"]),
    "zero_price": (
        HEADER + GOOD_ROW.format(d=1) + "2020-01-02,1.0,1.1,0,1.05,100\n",
        2,
        ["low 0.0", "positive"],
    ),
    "negative_price": (HEADER + "2020-01-01,-1.0,1.1,0.9,1.05,100\n", 1, ["open -1.0", "positive"]),
    "high_below_low": (
        HEADER + GOOD_ROW.format(d=1) + GOOD_ROW.format(d=2) + "2020-01-03,1.03,1.02,1.05,1.04,1\n",
        3,
        ["high 1.02 < low 1.05"],
    ),
    "close_outside": (HEADER + "2020-01-01,1.0,1.1,0.9,1.2,100\n", 1, ["close 1.2 outside"]),
    "empty": ("", None, ["empty"]),
    "header_only": (HEADER, None, ["no data rows"]),
    "bad_timestamp": (HEADER + GOOD_ROW.format(d=1) + "yesterday,1.0,1.1,0.9,1.05,100\n", 2, ["'yesterday'"]),
    "not_a_number": (HEADER + "2020-01-01,1.0,1.1,0.9,n/a?,100\n", 1, ["'n/a?'", "not a number"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_user_file_raises_with_file_row_and_reason(tmp_path: Path, case: str) -> None:
    text, row, reasons = BAD_FILES[case]
    path = _csv(tmp_path, f"BAD{case.upper()}_1d.csv", text)
    with pytest.raises(DataError) as err:
        read_bars_file(path)
    message = str(err.value)
    assert str(path) in message
    if row is not None:
        assert f"row {row} " in message or f"row {row}:" in message
    for reason in reasons:
        assert reason in message
    with pytest.raises(DataError, match=path.name):  # load_bars goes through the same checks
        load_bars(f"bad{case}", "1d", directory=tmp_path)


def test_first_offending_row_is_reported_with_timestamp(tmp_path: Path) -> None:
    rows = [GOOD_ROW.format(d=d) for d in range(1, 6)]
    rows[3] = "2020-01-04,1.0,1.1,0.9,1.05,-5\n"  # row 4: negative volume
    rows[4] = "2020-01-05,1.0,0.8,0.9,1.05,100\n"  # row 5: high < low, reported after row 4
    path = _csv(tmp_path, "MANY_1d.csv", HEADER + "".join(rows))
    with pytest.raises(DataError) as err:
        read_bars_file(path)
    assert "row 4 (2020-01-04 00:00:00+00:00): volume -5.0 < 0" in str(err.value)
    assert "2 rows have problems" in str(err.value)


def test_validate_bars_on_frames_and_idempotent() -> None:
    bars = load_bars("META", "1d").iloc[:50]
    pd.testing.assert_frame_equal(validate_bars(bars, "meta"), bars)
    broken = bars.copy()
    broken.iloc[7, broken.columns.get_loc("high")] = np.nan
    with pytest.raises(DataError, match=r"^my frame: row 8 \(.*\): high is missing"):
        validate_bars(broken, "my frame")
    naive = bars.tz_localize(None)
    assert validate_bars(naive, "naive").index.equals(bars.index)


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_bars_file(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unsupported file type"):
        read_bars_file(_csv(tmp_path, "bars.xlsx", "x"))
    with pytest.raises(DataError, match="not a readable Parquet"):
        read_bars_file(_csv(tmp_path, "X_1d.parquet", "not parquet"))

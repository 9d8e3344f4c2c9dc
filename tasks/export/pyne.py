"""Proof that a Pine export runs and trades as the engine does, offline: ``pynescript`` parses it,
``opencode-pine2pyne`` transpiles it to PyneCore Python, and ``pynesys-pynecore`` runs it on our bars
and writes TradingView's list of trades, which :func:`compare_trades` lines up with the engine's.

The three tools live in their own environment (``.venv-pine``, made by ``scripts/setup.sh`` from
``requirements-pine.lock``): PyneCore's CLI pins a ``typer`` that the locked set cannot take.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import overload

import pandas as pd
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[2]


class PineToolError(RuntimeError):
    """A Pine tool is missing, or refused the script; the message has the tool's own words."""


def pine_bin() -> Path:
    """The folder with the Pine tools: ``$STRATLAB_PINE_VENV/bin``, else ``.venv-pine/bin``."""
    venv = Path(os.environ.get("STRATLAB_PINE_VENV") or REPO / ".venv-pine")
    if not (venv / "bin" / "pyne").is_file():
        raise PineToolError(f"no Pine tools in {venv}: run scripts/setup.sh")
    return venv / "bin"


def _run(args: list[str], what: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise PineToolError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def parse_pine(text: str) -> None:
    """Raise PineToolError unless pynescript parses ``text`` as Pine."""
    error = parse_pines([text])[0]
    if error is not None:
        raise PineToolError(f"pynescript parse failed: {error}")


_PARSE_ALL = """
import json, sys
from pynescript.ast import parse
errors = []
for text in json.load(sys.stdin):
    try:
        parse(text)
        errors.append(None)
    except Exception as exc:  # the parser's own message, per script
        errors.append(f"{type(exc).__name__}: {exc}"[-1500:])
print(json.dumps(errors))
"""


def parse_pines(texts: list[str]) -> list[str | None]:
    """pynescript's verdict on each script (None when it parses), in one process: its parser takes
    about 13 s to warm up and then some 25 ms a script."""
    out = _run([str(pine_bin() / "python"), "-c", _PARSE_ALL], "pynescript parse", stdin=json.dumps(texts))
    return json.loads(out)


@overload
def run_pine(text: str, bars: pd.DataFrame, symbol: str, tick: float, folder: Path) -> pd.DataFrame: ...


@overload
def run_pine(
    text: str, bars: pd.DataFrame, symbol: str, tick: float, folder: Path, outputs: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]: ...


def run_pine(
    text: str,
    bars: pd.DataFrame,
    symbol: str,
    tick: float,
    folder: Path,
    outputs: Sequence[str] | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Transpile and run the script on ``bars``; return its closed trades (one row each: entry and exit
    time, direction, prices, contracts, profit), as TradingView's list of trades gives them.

    With ``outputs`` (titles of the script's ``plot`` calls, e.g. ``model.prob_up``), return the trades
    and the plotted values: one column per title, one row per bar of ``bars`` (NaN where the script
    plotted ``na``), read from the CSV that ``pyne run --plot`` writes."""
    tools = pine_bin()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "strategy.pine").write_text(text, encoding="utf-8")
    _run([str(tools / "pine2pyne"), "strategy.pine", "-o", "strategy.py"], "pine2pyne", cwd=folder)
    data = bars.reset_index()
    data.columns = ["time", *data.columns[1:]]
    data["time"] = data["time"].astype("int64") // 10**9 if data["time"].dtype.kind == "M" else data["time"]
    csv = folder / f"{symbol}.csv"
    data[["time", "open", "high", "low", "close", "volume"]].to_csv(csv, index=False)
    pyne = [str(tools / "pyne"), "-w", str(folder / "workdir")]
    _run([*pyne, "data", "convert-from", str(csv), "-s", symbol, "-p", "stratlab"], "pyne data", stdin="y\n")
    _set_symbol(csv.with_suffix(".toml"), tick)
    trades = folder / "trades.csv"
    plots = folder / "plots.csv"
    _run(
        [
            *pyne,
            "run",
            str(folder / "strategy.py"),
            str(csv.with_suffix(".ohlcv")),
            "--trade",
            str(trades),
            *(["--no-plot"] if outputs is None else ["--plot", str(plots)]),
        ],
        "pyne run",
        cwd=folder,
        stdin="y\n",
    )
    closed = _closed_trades(pd.read_csv(trades))
    if outputs is None:
        return closed
    return closed, _plotted(plots, list(outputs), bars.index)


def _plotted(path: Path, titles: list[str], index: pd.Index) -> pd.DataFrame:
    """The plotted series named ``titles``, one row per bar: PyneCore writes a row per bar with the time,
    OHLCV and a column per ``plot`` title."""
    rows = pd.read_csv(path)
    missing = [t for t in titles if t not in rows.columns]
    if missing:
        raise PineToolError(f"pyne run plotted no {missing} (plotted: {list(rows.columns[6:])})")
    if len(rows) != len(index):
        raise PineToolError(f"pyne run plotted {len(rows)} bars of {len(index)}")
    if isinstance(index, pd.DatetimeIndex):
        expected = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        if not (pd.DatetimeIndex(pd.to_datetime(rows["time"], utc=True)) == expected).all():
            raise PineToolError("pyne run plotted bars at other times than the input bars")
    return pd.DataFrame(
        {t: pd.to_numeric(rows[t], errors="coerce").to_numpy(dtype=float) for t in titles}, index=index
    )


def _set_symbol(toml: Path, tick: float) -> None:
    """The symbol's tick, and fractional contracts as the engine trades them."""
    values = {"mintick": f"{tick:.10f}", "pricescale": str(round(1 / tick)), "mincontract": "0.000001"}
    lines = []
    for line in toml.read_text(encoding="utf-8").splitlines():
        key = line.split("=")[0].strip()
        lines.append(f"{key} = {values[key]}" if key in values else line)
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _closed_trades(rows: pd.DataFrame) -> pd.DataFrame:
    price = next(c for c in rows.columns if c.startswith("Price"))
    profit = next(c for c in rows.columns if c.startswith("Profit") and "%" not in c)
    out = []
    for _, group in rows.groupby("Trade #", sort=True):
        entry = group[group["Type"].str.startswith("Entry")]
        exit_ = group[group["Type"].str.startswith("Exit")]
        if entry.empty or exit_.empty or exit_.iloc[0]["Signal"] == "Open":
            continue  # still open at the end: TradingView lists it with the signal "Open"
        e, x = entry.iloc[0], exit_.iloc[0]
        out.append(
            {
                "entry_time": pd.Timestamp(e["Date/Time"]),
                "exit_time": pd.Timestamp(x["Date/Time"]),
                "direction": "long" if "long" in e["Type"] else "short",
                "entry_price": float(e[price]),
                "exit_price": float(x[price]),
                "size": float(e["Contracts"]),
                "pnl": float(x[profit]),
            }
        )
    return pd.DataFrame(out)


class Parity(BaseModel):
    """How the target's closed trades line up with the engine's."""

    engine_trades: int
    target_trades: int
    identical: int
    share: float  # identical / max(engine, target)
    mismatches: list[dict]  # the first few, each with both sides and what differs


def compare_trades(engine: pd.DataFrame, target: pd.DataFrame, tick: float, show: int = 10) -> Parity:
    """Trades are identical when entry and exit bars and direction agree and both prices are within a
    tick (the target rounds order levels to the tick; the engine does not)."""
    key = ["entry_time", "exit_time", "direction"]
    merged = engine.merge(target, on=key, how="outer", suffixes=("_engine", "_target"), indicator=True)
    same = merged["_merge"] == "both"
    for side in ("entry_price", "exit_price"):
        same &= (merged[f"{side}_engine"] - merged[f"{side}_target"]).abs() <= tick * 1.0001
    bad = merged[~same].sort_values("entry_time").head(show)
    mismatches = [
        {k: (str(v) if isinstance(v, pd.Timestamp) else v) for k, v in row.items() if pd.notna(v)}
        for row in bad.drop(columns="_merge").to_dict("records")
    ]
    for item, why in zip(mismatches, bad["_merge"], strict=True):
        item["only_in"] = {"left_only": "engine", "right_only": "target"}.get(why)
    for item in mismatches:
        item["reason"] = _explain(item, mismatches, tick)
    total = max(len(engine), len(target), 1)
    return Parity(
        engine_trades=len(engine),
        target_trades=len(target),
        identical=int(same.sum()),
        share=round(float(same.sum()) / total, 6),
        mismatches=mismatches,
    )


def _explain(item: dict, mismatches: list[dict], tick: float) -> str:
    """Why a trade differs, from what the two sides say (export.json carries it with the trade)."""
    if item["only_in"] is None:
        worst = max(
            abs(item[f"{side}_engine"] - item[f"{side}_target"]) for side in ("entry_price", "exit_price")
        )
        ticks = worst / tick
        if ticks <= 2:
            return (
                f"same bars, prices {ticks:.2f} ticks apart: the target puts its fills and stop levels on the "
                "tick grid (a long's stop rounds down, its take-profit up); the engine does not round"
            )
        return f"same bars, prices {ticks:.1f} ticks apart"
    mine, other = ("engine", "target") if item["only_in"] == "engine" else ("target", "engine")
    partner = next(
        (
            m
            for m in mismatches
            if m["only_in"] == other and m["entry_time"] == item["entry_time"] and m is not item
        ),
        None,
    )
    if partner is None:
        return f"only the {mine} has this trade: an entry signal, or the exit of the trade before, differs"
    gap = abs(item[f"exit_price_{mine}"] - partner[f"exit_price_{other}"]) / tick
    return (
        f"same entry, the {mine} exits on {item['exit_time']} and the {other} on {partner['exit_time']} "
        f"(exit prices {gap:.1f} ticks apart): a stop or take level within a tick of the bar's extreme, "
        "reached on one side of the rounding only"
        if gap <= 2
        else f"same entry, the {mine} exits on {item['exit_time']} and the {other} on {partner['exit_time']}"
    )

"""Proof that a C# export compiles and trades as the engine does, offline: Debian's ``mono-mcs`` compiles
it against the stand-in ``cAlgo.API`` (``tasks/export/calgo/``), and the stand-in's bar runner plays
the shipped bars through it and writes its closed trades.

The stand-in is written from cTrader's published API reference, not Spotware's assembly: it proves that
the export uses that API surface as documented and trades as the engine does under the documented
semantics (``calgo/Backtester.cs`` lists them), not that cTrader's own backtester agrees tick for tick.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from tasks.settings import asset_class

CALGO = Path(__file__).resolve().parent / "calgo"
LANGUAGE = "7.2"  # mcs 6.8 reads C# up to 7.2; the issue asks for 7.3 or older


class CSharpToolError(RuntimeError):
    """mcs or mono is missing, or refused the code; the message has the tool's own words."""


def tools() -> tuple[str, str]:
    mcs, mono = shutil.which("mcs"), shutil.which("mono")
    if not mcs or not mono:
        raise CSharpToolError("no mcs/mono: install Debian's mono-mcs (scripts/test.sh does, as root)")
    return mcs, mono


def _run(args: list[str], what: str, cwd: Path | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise CSharpToolError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout + done.stderr


def api_assembly() -> Path:
    """The stand-in ``cAlgo.API.dll`` and the runner ``harness.exe``, compiled once per source version
    into a cache folder (``$STRATLAB_CSHARP_CACHE`` or the system's temporary folder)."""
    mcs, _ = tools()
    sources = sorted(CALGO.glob("*.cs"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    root = Path(os.environ.get("STRATLAB_CSHARP_CACHE") or Path(tempfile.gettempdir()) / "stratlab-csharp")
    folder = root / digest
    dll, exe = folder / "cAlgo.API.dll", folder / "harness.exe"
    if dll.is_file() and exe.is_file():
        return folder
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root if root.exists() else None))
    stub = work / "Main.cs"
    stub.write_text(
        "public static class Entry { public static int Main(string[] a) "
        "{ return StratLab.Harness.Program.Main(a); } }\n",
        encoding="utf-8",
    )
    _run(
        [mcs, f"-langversion:{LANGUAGE}", "-target:library", f"-out:{work / dll.name}", *map(str, sources)],
        "mcs",
    )
    _run([mcs, "-target:exe", f"-r:{work / dll.name}", f"-out:{work / exe.name}", str(stub)], "mcs")
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        work.rename(folder)  # atomic: a concurrent build leaves one complete folder
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def compile_csharp(text: str, folder: Path) -> Path:
    """Compile an export into ``folder/bot.dll`` against the stand-in; CSharpToolError with mcs's
    messages when it does not compile (warnings are errors: an export should be clean)."""
    mcs, _ = tools()
    api = api_assembly()
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "bot.cs"
    source.write_text(text, encoding="utf-8")
    dll = folder / "bot.dll"
    _run(
        [
            mcs,
            f"-langversion:{LANGUAGE}",
            "-target:library",
            "-warnaserror+",
            f"-r:{api / 'cAlgo.API.dll'}",
            f"-out:{dll}",
            str(source),
        ],
        "mcs (export)",
    )
    return dll


def pip_size(symbol: str, tick: float) -> float:
    """cTrader's pip: 0.0001 for FX (0.01 for JPY pairs); the tick elsewhere."""
    if asset_class(symbol) == "fx":
        return 0.01 if symbol.upper().endswith("JPY") else 0.0001
    return tick


def run_csharp(
    text: str,
    bars: pd.DataFrame,
    symbol: str,
    tick: float,
    cash: float,
    folder: Path,
    values: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Compile the export and play ``bars`` through it; its closed trades, one row each, as
    :func:`tasks.export.pyne.compare_trades` reads them. With ``values``, also the cBot's public values
    (fuzzy memberships, model outputs: one column per property) at each closed bar, indexed like
    ``bars``; the last bar never closes, so its row is NaN."""
    _, mono = tools()
    dll = compile_csharp(text, folder)
    api = api_assembly()
    data = bars.reset_index()
    data.columns = ["time", *data.columns[1:]]
    data["time"] = data["time"].astype("int64") // 10**9 if data["time"].dtype.kind == "M" else data["time"]
    csv = folder / "bars.csv"
    data[["time", "open", "high", "low", "close", "volume"]].to_csv(csv, index=False, float_format="%.17g")
    trades = folder / "trades.csv"
    _run(
        [
            mono,
            str(api / "harness.exe"),
            str(dll),
            str(csv),
            str(trades),
            symbol,
            repr(tick),
            repr(pip_size(symbol, tick)),
            repr(cash),
            *([f"--values={folder / 'values.csv'}"] if values else []),
        ],
        "harness",
    )
    rows = pd.read_csv(trades)
    index = bars.index
    closed = pd.DataFrame(
        {
            "entry_time": [pd.Timestamp(index[i]) for i in rows["entry_bar"]],
            "exit_time": [pd.Timestamp(index[i]) for i in rows["exit_bar"]],
            "direction": rows["direction"].astype(str),
            "entry_price": rows["entry_price"].astype(float),
            "exit_price": rows["exit_price"].astype(float),
            "size": rows["size"].astype(float),
            "pnl": rows["pnl"].astype(float),
        },
        columns=["entry_time", "exit_time", "direction", "entry_price", "exit_price", "size", "pnl"],
    )
    if not values:
        return closed
    recorded = pd.read_csv(folder / "values.csv", index_col="bar")
    recorded = recorded.reindex(range(len(bars))).astype(float)
    recorded.index = bars.index
    return closed, recorded

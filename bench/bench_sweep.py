"""Benchmark the sweep engine: against backtesting.py, at scale, and on a local Dask cluster.

Three parts (``--part``, default all); every number lands in ``bench/results/sweep-<UTC stamp>.json``
with the code and library versions and the CPU count, and each part prints a markdown table.

vs-backtesting
    An EMA cross (fast 5..23 step 2 x slow 30..120 step 10: 100 combinations, fees 1e-4, long only,
    no stops) on all 6,225 EURUSD 1h bars of 2017, by our vectorized ``evaluate_combos`` and by
    backtesting.py's ``Backtest.optimize`` (``bench/backtesting_side.py``). Both must pick the same
    best pair (ours: the largest ``final_value``, the first in grid order on a tie) and that pair's
    closed trades must be identical (entry/exit times; entry/exit prices within 1e-9 relative).
    warm = in this process, after one untimed run of each, the best of 3 runs. cold = a fresh process
    (``--child ours|theirs``) that imports, loads the bars and sweeps; ours twice, with an empty numba
    cache (vectorbt's JIT compiles) and then with that cache filled. backtesting.py runs with its
    process pool (processes=True, one worker per CPU) and without it (processes=False).
    Its time is the ``optimize`` call alone (its EMAs are precomputed outside it); ours covers the
    grid, the indicators, the simulation, the metrics and the choice of the best.

scaling
    100 / 1,000 / 10,000 combinations x 5,000 / 50,000 bars of ``strategies/ema_cross_atr.yaml`` (ATR
    stop and take-profit: the realistic path), each cell in a fresh process (``--child scaling``) so that
    its peak RSS is its own (``VmHWM``, not ``ru_maxrss``, which a child inherits from its parent: see
    :func:`peak_rss_mib`; both are recorded). The combinations are the first N of one random sample
    (seed 0) of the contract's full grid, so 100 is a prefix of 1,000, a prefix of 10,000.
    The bars are real EURUSD 1h bars of 2017 repeated: 6,225 real bars do not make 50,000, so copies of
    them are chained, every copy's prices (OHLC, not volume) rescaled so that it opens at the previous
    copy's last close (no gap between copies), on one plain hourly UTC index (``pd.date_range``, no
    weekends) from the first real bar. The 5,000-bar cells are the first 5,000 real bars on that index.
    Each child warms numba up on a tiny sweep first (untimed), then times ``evaluate_combos`` over all
    the bars: the best of up to 3 runs within 10 s (one run for the large cells).

dask
    The ``sweep`` Prefect flow on ema_cross_atr with its two stop multiples disabled (ema_fast.window
    5..30 step 1 x ema_slow.window 30..120 step 2 = 1,196 combinations), and with them on a coarse grid
    (x 4 x 5 = 23,920: ``DASK_SIZES``), EURUSD 1h, grid, in-process
    and with ``dask="local:2"``, in a child process with a temporary Prefect home and reports folder,
    after one untimed in-process sweep that starts Prefect's ephemeral server. The two leaderboards
    must be equal. The Dask time includes starting and stopping its 2-worker LocalCluster.

    .venv/bin/python bench/bench_sweep.py                          # all three parts
    .venv/bin/python bench/bench_sweep.py --part scaling --quick   # without the 10,000 x 50,000 cell
    .venv/bin/python bench/bench_sweep.py --part vs-backtesting

backtesting.py is AGPL: it is imported only by ``bench/backtesting_side.py``, never by the product.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from strategy_contract import Strategy

REPO = Path(__file__).resolve().parents[1]
ATR_CONTRACT = REPO / "strategies" / "ema_cross_atr.yaml"
FAST, SLOW, FEES = list(range(5, 24, 2)), list(range(30, 121, 10)), 0.0001
WARM_RUNS = 3
COMBOS, BARS = (100, 1_000, 10_000), (5_000, 50_000)
PRICE_RTOL = 1e-9
_STARTED = time.perf_counter()  # a cold child's clock: after the stdlib imports, before the heavy ones


# ---------------------------------------------------------------------------------------------- helpers


def ru_maxrss_mib() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux); recorded beside :func:`peak_rss_mib`."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mib() -> float:
    """This process's own peak resident memory so far: ``VmHWM`` of /proc/self/status.

    Not ru_maxrss: on Linux a process started by fork + exec inherits its parent's maxrss at the fork,
    so a cell launched after the vs-backtesting part (parent at ~500 MiB) never read below ~500 MiB.
    VmHWM is the high-water mark of this process's address space, fresh at exec. Without /proc,
    ru_maxrss is the fallback.
    """
    try:
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return ru_maxrss_mib()


def best_time(fn: Callable[[], Any], runs: int = WARM_RUNS, budget_s: float = math.inf) -> float:
    """The fastest of ``runs`` timed calls, stopping early once ``budget_s`` is spent (at least one)."""
    times: list[float] = []
    while len(times) < runs and (not times or sum(times) < budget_s):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run this script as ``--child ...`` in a fresh interpreter; its JSON (last stdout line) plus the
    wall time measured from here (interpreter start to exit)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child {args} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return {**json.loads(lines[-1]), "wall_s": wall}


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    """A markdown table, the first column left-aligned and the others right-aligned."""
    lines = ["| " + " | ".join(headers) + " |", "|:---|" + "---:|" * (len(headers) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def check(name: str, ok: bool, detail: str) -> dict:
    """A recorded check: failures are raised after the results are written, so no number is lost."""
    return {"name": name, "ok": bool(ok), "detail": detail}


# -------------------------------------------------------------------------------- part 1: backtesting.py


def bench_contract() -> dict:
    """The EMA cross both engines run: our contract for what ``backtesting_side.EmaCross`` does."""
    return {
        "strategy_id": "ema_cross_bench",
        "thesis": "EMA cross, the benchmark against backtesting.py",
        "markets": ["EURUSD"],
        "timeframes": ["1h"],
        "indicators": [
            {"id": "ema_fast", "type": "ema", "params": {"window": 5}},
            {"id": "ema_slow", "type": "ema", "params": {"window": 30}},
        ],
        "entry_rules": [{"left": "ema_fast", "op": "crosses_above", "right": "ema_slow"}],
        "exit_rules": [{"left": "ema_fast", "op": "crosses_below", "right": "ema_slow"}],
        "risk_model": {"fees": FEES, "slippage": 0.0, "direction": "long", "position_size": 1.0},
        "optimization_space": {
            "ema_fast.window": {"enabled": True, "min": 5, "max": 23, "step": 2, "value": 5},
            "ema_slow.window": {"enabled": True, "min": 30, "max": 120, "step": 10, "value": 30},
        },
    }


def ours_sweep(strategy: Strategy, bars: pd.DataFrame) -> tuple[dict[str, int], pd.DataFrame]:
    """The whole grid over all bars in one vectorized pass; the best pair by final value (the first in
    grid order on a tie, as ``idxmax`` returns the first maximum)."""
    from tasks.backtest import bars_per_year
    from tasks.sweep.evaluate import evaluate_combos
    from tasks.sweep.space import Space

    grid = Space.of(strategy).grid(len(FAST) * len(SLOW))
    table = evaluate_combos(strategy, bars, grid, 0, len(bars), bars_per_year(bars.index))
    table = table.reset_index(drop=True)
    row = table.loc[table["final_value"].idxmax()]
    best = {"fast": int(row["ema_fast.window"]), "slow": int(row["ema_slow.window"])}
    return best, table


def our_trades(strategy: Strategy, bars: pd.DataFrame, best: dict[str, int]) -> pd.DataFrame:
    """The closed trades of our single backtest of the best pair, in backtesting_side's columns."""
    import pandas as pd

    from tasks.backtest import simulate, trade_list
    from tasks.features import feature_frame

    one = strategy.with_params({"ema_fast.window": best["fast"], "ema_slow.window": best["slow"]})
    trades = trade_list(simulate(one, bars, feature_frame(bars, one), 0, len(bars)))
    return pd.DataFrame(
        {
            "entry_time": [pd.Timestamp(t.entry_time) for t in trades],
            "exit_time": [pd.Timestamp(t.exit_time) for t in trades],
            "entry_price": [t.entry_price for t in trades],
            "exit_price": [t.exit_price for t in trades],
        }
    )


def _same_trade(a: pd.Series, b: pd.Series) -> bool:
    times = a["entry_time"] == b["entry_time"] and a["exit_time"] == b["exit_time"]
    prices = all(math.isclose(a[c], b[c], rel_tol=PRICE_RTOL) for c in ("entry_price", "exit_price"))
    return bool(times and prices)


def compare_trades(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict:
    """Trade by trade; the detail names the first trade that differs, with both versions of it."""
    for i in range(max(len(ours), len(theirs))):
        a = ours.iloc[i].to_dict() if i < len(ours) else None
        b = theirs.iloc[i].to_dict() if i < len(theirs) else None
        if a is None or b is None or not _same_trade(ours.iloc[i], theirs.iloc[i]):
            detail = (
                f"trade {i} of {len(ours)} (ours) / {len(theirs)} (backtesting.py) differs: "
                f"ours {a}, backtesting.py {b}"
            )
            return check("same closed trades of the best pair", False, detail)
    return check("same closed trades of the best pair", True, f"{len(ours)} closed trades identical")


def warm_timings(strategy: Strategy, bars: pd.DataFrame) -> dict:
    """Best of 3 in this process after one untimed run of each: ours, backtesting.py with and without
    its process pool (its own clock: the optimize call)."""
    from backtesting_side import optimize_ema_cross

    ours_sweep(strategy, bars)
    ours = best_time(lambda: ours_sweep(strategy, bars))
    result = {"ours_s": ours}
    for processes in (True, False):
        optimize_ema_cross(bars, FAST, SLOW, FEES, processes=processes)
        runs = [optimize_ema_cross(bars, FAST, SLOW, FEES, processes=processes) for _ in range(WARM_RUNS)]
        result[f"theirs_processes_{processes}_s"] = min(r["seconds"] for r in runs)
    return result


def cold_timings() -> dict:
    """Fresh processes: ours with an empty numba cache, then with it filled; backtesting.py with and
    without its process pool (the numba cache is irrelevant to it, it has no JIT)."""
    with tempfile.TemporaryDirectory(prefix="stratlab-bench-numba-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        return {
            "ours_numba_empty": run_child(["ours"], env),
            "ours_numba_filled": run_child(["ours"], env),
            "theirs_processes_True": run_child(["theirs", "--processes", "1"], env),
            "theirs_processes_False": run_child(["theirs", "--processes", "0"], env),
        }


def part_vs_backtesting() -> dict:
    """Same best pair, same trades, and how long each engine takes, warm and cold."""
    from backtesting_side import optimize_ema_cross, trades_of

    from strategy_contract import parse_strategy
    from tasks.data import load_bars

    bars = load_bars("EURUSD", "1h")
    strategy = parse_strategy(bench_contract())
    best, table = ours_sweep(strategy, bars)
    theirs = optimize_ema_cross(bars, FAST, SLOW, FEES, processes=True)
    ours_trades = our_trades(strategy, bars, best)
    their_trades = trades_of(bars, best["fast"], best["slow"], FEES)
    ours_final = float(table["final_value"].max()) / strategy.risk_model.init_cash
    checks = [
        check("same best pair", best == theirs["best"], f"ours {best}, backtesting.py {theirs['best']}"),
        compare_trades(ours_trades, their_trades),
    ]
    return {
        "bars": len(bars),
        "combos": len(table),
        "backtesting_version": theirs["version"],
        "best": {"ours": best, "theirs": theirs["best"]},
        "equity_final_multiple": {"ours": ours_final, "theirs": theirs["equity_final"]},
        "closed_trades": {"ours": len(ours_trades), "theirs": len(their_trades)},
        "warm": warm_timings(strategy, bars),
        "cold": cold_timings(),
        "checks": checks,
    }


def child_ours() -> dict:
    """A cold run of ours: imports, bars, sweep, each timed from this process's first line."""
    imported = time.perf_counter()
    from strategy_contract import parse_strategy
    from tasks.data import load_bars

    imported, loading = time.perf_counter() - imported, time.perf_counter()
    strategy = parse_strategy(bench_contract())
    bars = load_bars("EURUSD", "1h")
    loaded, sweeping = time.perf_counter() - loading, time.perf_counter()
    best, _ = ours_sweep(strategy, bars)
    swept = time.perf_counter() - sweeping
    return {
        "import_s": imported,
        "load_s": loaded,
        "sweep_s": swept,
        "in_child_s": time.perf_counter() - _STARTED,
        "best": best,
    }


def child_theirs(processes: bool) -> dict:
    """A cold run of backtesting.py: imports, bars, then ``optimize_ema_cross`` (EMAs + optimize)."""
    imported = time.perf_counter()
    from backtesting_side import optimize_ema_cross

    from tasks.data import load_bars

    imported, loading = time.perf_counter() - imported, time.perf_counter()
    bars = load_bars("EURUSD", "1h")
    loaded, sweeping = time.perf_counter() - loading, time.perf_counter()
    result = optimize_ema_cross(bars, FAST, SLOW, FEES, processes=processes)
    return {
        "import_s": imported,
        "load_s": loaded,
        "sweep_s": time.perf_counter() - sweeping,  # EMA preparation + optimize
        "optimize_s": result["seconds"],
        "in_child_s": time.perf_counter() - _STARTED,
        "best": result["best"],
    }


def print_vs_backtesting(res: dict) -> None:
    """Warm and cold times of both engines and the ratios theirs / ours."""
    warm, cold = res["warm"], res["cold"]
    print(
        f"\n## vs backtesting.py {res['backtesting_version']}: {res['combos']} combinations x "
        f"{res['bars']:,} bars\n"
    )
    print(
        f"best: ours {res['best']['ours']}, backtesting.py {res['best']['theirs']}; closed trades "
        f"{res['closed_trades']['ours']} / {res['closed_trades']['theirs']}; final equity x"
        f"{res['equity_final_multiple']['ours']:.9f} / x{res['equity_final_multiple']['theirs']:.9f}\n"
    )
    rows = [["ours (warm)", f"{warm['ours_s']:.3f}", "1.0"]]
    for p in (True, False):
        t = warm[f"theirs_processes_{p}_s"]
        rows.append([f"backtesting.py processes={p} (warm)", f"{t:.3f}", f"{t / warm['ours_s']:.1f}"])
    print(md_table(["engine", "sweep s (best of 3)", "theirs / ours"], rows))
    ours_cold = cold["ours_numba_filled"]
    rows = []
    for key, label in (
        ("ours_numba_empty", "ours, numba cache empty"),
        ("ours_numba_filled", "ours, numba cache filled"),
        ("theirs_processes_True", "backtesting.py processes=True"),
        ("theirs_processes_False", "backtesting.py processes=False"),
    ):
        r = cold[key]
        ratio_wall = r["wall_s"] / ours_cold["wall_s"]
        ratio_sweep = r.get("optimize_s", r["sweep_s"]) / ours_cold["sweep_s"]
        rows.append(
            [
                label,
                f"{r['wall_s']:.2f}",
                f"{r['import_s']:.2f}",
                f"{r['sweep_s']:.3f}",
                f"{r['optimize_s']:.3f}" if "optimize_s" in r else "",
                f"{ratio_wall:.1f}",
                f"{ratio_sweep:.1f}",
            ]
        )
    headers = [
        "cold process",
        "wall s",
        "import s",
        "sweep call s",
        "optimize s",
        "wall / ours",
        "sweep / ours",
    ]
    print("\n" + md_table(headers, rows))
    print(
        "\nwarm: in one process after an untimed run, best of 3; backtesting.py's time is its optimize call "
        "(EMAs precomputed outside it), ours is grid + indicators + simulation + metrics + best."
        "\ncold: a fresh process; wall = interpreter start to exit (measured by the parent); sweep call "
        "= ours_sweep / optimize_ema_cross (EMA preparation + optimize). Ratios are against ours with "
        "the numba cache filled; backtesting.py's sweep ratio uses its optimize call."
    )


# -------------------------------------------------------------------------------------- part 2: scaling


def synthetic_bars(real: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` hourly bars made of chained copies of ``real``, each rescaled to open at the previous copy's
    last close, on a plain hourly UTC index from the first real bar (see the module docstring)."""
    import pandas as pd

    prices = ["open", "high", "low", "close"]
    copies = [real]
    while sum(len(c) for c in copies) < n:
        copy = real.copy()
        copy[prices] = real[prices] * (copies[-1]["close"].iloc[-1] / real["open"].iloc[0])
        copies.append(copy)
    bars = pd.concat(copies).iloc[:n].copy()
    bars.index = pd.date_range(real.index[0], periods=n, freq="h", tz="UTC", name=real.index.name)
    return bars


def scaling_combos(strategy: Strategy, n: int, seed: int = 0) -> pd.DataFrame:
    """The first ``n`` of one random sample of the full grid: every axis drawn with one seeded
    generator, allowed and distinct rows kept, so that smaller samples are prefixes of larger ones."""
    import numpy as np
    import pandas as pd

    from tasks.sweep.space import Space

    space = Space.of(strategy)
    rng = np.random.default_rng(seed)
    draw = 2 * max(COMBOS)
    sample = pd.DataFrame({k: rng.choice(v, size=draw) for k, v in space.axes.items()})
    sample = space.valid(sample).drop_duplicates().head(max(COMBOS)).reset_index(drop=True)
    if len(sample) < n:
        raise RuntimeError(f"only {len(sample)} distinct combinations sampled, {n} wanted")
    return sample.head(n)


def child_scaling(n_combos: int, n_bars: int) -> dict:
    """One cell in this fresh process: RSS after imports, warm-up, timed sweep, peak RSS at the end."""
    from strategy_contract import load_strategy
    from tasks.backtest import bars_per_year, rows_per_bar
    from tasks.data import load_bars
    from tasks.sweep.evaluate import chunk_size, evaluate_combos

    rss_imports = peak_rss_mib()
    strategy = load_strategy(ATR_CONTRACT)
    real = load_bars("EURUSD", "1h")
    small = real.iloc[:500]
    warmup = scaling_combos(strategy, 2)
    evaluate_combos(strategy, small, warmup, 0, len(small), bars_per_year(small.index))
    rss_warm = peak_rss_mib()
    bars = synthetic_bars(real, n_bars)
    combos = scaling_combos(strategy, n_combos)
    per_year = bars_per_year(bars.index)
    rss_data = peak_rss_mib()

    def sweep() -> None:
        evaluate_combos(strategy, bars, combos, 0, len(bars), per_year)

    seconds = best_time(sweep, runs=3, budget_s=10.0)
    return {
        "combos": len(combos),
        "bars": len(bars),
        "chunk": chunk_size(len(bars), rows=rows_per_bar(strategy)),
        "seconds": seconds,
        "bar_combos_per_s": len(bars) * len(combos) / seconds,
        "rss_after_imports_mib": rss_imports,
        "rss_after_warmup_mib": rss_warm,
        "rss_before_sweep_mib": rss_data,
        "peak_rss_mib": peak_rss_mib(),
        "ru_maxrss_mib": ru_maxrss_mib(),  # includes the parent's RSS at the fork: see peak_rss_mib
    }


def part_scaling(quick: bool) -> dict:
    """Every cell in its own process; ``quick`` leaves out the 10,000 x 50,000 cell."""
    cells = []
    for n_bars in BARS:
        for n_combos in COMBOS:
            if quick and (n_combos, n_bars) == (max(COMBOS), max(BARS)):
                continue
            print(f"scaling: {n_combos:,} combinations x {n_bars:,} bars ...", file=sys.stderr, flush=True)
            cells.append(run_child(["scaling", "--combos", str(n_combos), "--bars", str(n_bars)]))
    return {"contract": str(ATR_CONTRACT.relative_to(REPO)), "quick": quick, "cells": cells}


def print_scaling(res: dict) -> None:
    """One row per cell: time, throughput and memory."""
    print(f"\n## scaling: {res['contract']} (ATR stop + take-profit), evaluate_combos over all bars\n")
    rows = [
        [
            f"{c['combos']:,} x {c['bars']:,}",
            f"{c['chunk']}",
            f"{c['seconds']:.2f}",
            f"{c['bar_combos_per_s'] / 1e6:.1f}",
            f"{c['rss_after_imports_mib']:.0f}",
            f"{c['rss_before_sweep_mib']:.0f}",
            f"{c['peak_rss_mib']:.0f}",
        ]
        for c in res["cells"]
    ]
    headers = [
        "combos x bars",
        "chunk",
        "sweep s",
        "M bar-combos/s",
        "RSS after imports MiB",
        "RSS before sweep MiB",
        "peak RSS MiB",
    ]
    print(md_table(headers, rows))
    print(
        "\nEach cell in a fresh process; sweep s = best of up to 3 runs within 10 s after a warm-up. "
        "RSS before sweep = after imports, warm-up, bars and combinations. Aim: >= 10 M bar-combos/s "
        "at the large sizes, peak RSS < 1.5 GB (1,430 MiB)."
        + ("\n--quick: the 10,000 x 50,000 cell was skipped." if res["quick"] else "")
    )


# ----------------------------------------------------------------------------------------- part 3: dask


DASK_SIZES = {
    # ema_cross_atr with its two stop multiples disabled: 26 x 46 = 1,196 EMA window pairs
    "small": {},
    # ... and with them on a coarse grid: 1,196 x 4 stop multiples x 5 take-profit multiples = 23,920
    "large": {
        "risk_model.stop_loss.multiple": {"enabled": True, "min": 1.0, "max": 4.0, "step": 1.0},
        "risk_model.take_profit.multiple": {"enabled": True, "min": 1.0, "max": 6.0, "step": 1.25},
    },
}


def dask_contract(folder: Path, size: str) -> Path:
    """ema_cross_atr with the space of ``DASK_SIZES[size]``."""
    import yaml

    data = yaml.safe_load(ATR_CONTRACT.read_text())
    for key in ("risk_model.stop_loss.multiple", "risk_model.take_profit.multiple"):
        data["optimization_space"][key]["enabled"] = False
    for key, change in DASK_SIZES[size].items():
        data["optimization_space"][key].update(change)
    path = folder / f"ema_cross_atr_dask_{size}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def child_dask(contracts: list[str]) -> dict:
    """Each contract's sweep flow in-process and on ``local:2``, after an untimed in-process run that
    starts Prefect's ephemeral server (and fills the numba cache)."""
    from flows.sweep import SweepParams, sweep

    def once(contract: str, dask: str | None) -> dict:
        params = SweepParams(strategy_file=contract, method="grid", max_combos=50_000, dask=dask)
        start = time.perf_counter()
        result = sweep(params)
        wall = time.perf_counter() - start
        fields = ("seconds", "trials", "evaluated", "chunks", "chunk_size", "bars", "best", "leaderboard")
        return {"wall_s": wall, **{f: getattr(result, f) for f in fields}}

    once(contracts[0], None)
    return {
        Path(c).stem.rsplit("_", 1)[1]: {"in_process": once(c, None), "dask": once(c, "local:2")}
        for c in contracts
    }


def first_difference(a: list[dict], b: list[dict]) -> str:
    """Where two leaderboards part: the first row that differs, with both versions."""
    for i in range(max(len(a), len(b))):
        ra, rb = (a[i] if i < len(a) else None), (b[i] if i < len(b) else None)
        if ra != rb:
            return f"row {i}: in-process {ra}, dask {rb}"
    return "equal"


def part_dask() -> dict:
    """Run the child with a private Prefect home and reports folder; compare the leaderboards."""
    with tempfile.TemporaryDirectory(prefix="stratlab-bench-dask-") as tmp:
        folder = Path(tmp)
        env = {
            **os.environ,
            "PREFECT_HOME": str(folder / "prefect"),
            "STRATLAB_REPORTS_DIR": str(folder / "reports"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        contracts = [str(dask_contract(folder, size)) for size in DASK_SIZES]
        res = run_child(["dask", "--contract", *contracts], env)
    res["checks"] = []
    for size in DASK_SIZES:
        runs = res[size]
        a, b = runs["in_process"]["leaderboard"], runs["dask"]["leaderboard"]
        res["checks"].append(
            check(f"{size}: same leaderboard in-process and on dask local:2", a == b, first_difference(a, b))
        )
    return res


def print_dask(res: dict) -> None:
    """Wall time of each run and the ratio."""
    print("\n## dask: sweep flow, ema_cross_atr on EURUSD 1h, in-process vs a 2-worker LocalCluster\n")
    rows = []
    for size in DASK_SIZES:
        local, dask = res[size]["in_process"], res[size]["dask"]
        what = f"{local['evaluated']:,} x {local['bars']:,} bars, {local['chunks']} chunks"
        for name, run in (("in-process", local), ("dask local:2", dask)):
            ratio = run["wall_s"] / local["wall_s"]
            rate = local["evaluated"] * local["bars"] / run["wall_s"] / 1e6
            rows.append([what, name, f"{run['wall_s']:.2f}", f"{rate:.2f}", f"{ratio:.2f}"])
    print(md_table(["sweep", "runner", "wall s", "M bar-combos/s", "wall / in-process"], rows))
    print(
        "\nwall = the sweep() call, after an untimed in-process run that started Prefect's ephemeral "
        "server; dask includes starting and stopping its 2-worker LocalCluster. "
        + "; ".join(f"{c['name']}: {c['detail']}" for c in res["checks"])
        + "."
    )


# -------------------------------------------------------------------------------------------------- main


def run_child_mode(args: argparse.Namespace) -> None:
    """``--child``: one measurement in this fresh process, printed as one JSON line."""
    if args.child == "ours":
        out = child_ours()
    elif args.child == "theirs":
        out = child_theirs(bool(args.processes))
    elif args.child == "scaling":
        out = child_scaling(args.combos, args.bars)
    else:
        out = child_dask(args.contract)
    print(json.dumps(out, default=str))


def write_results(parts: dict) -> Path:
    """All numbers, with what produced them, under bench/results/."""
    from tasks.provenance import code_version, library_versions

    try:
        from backtesting import __version__ as backtesting_version
    except ImportError:
        backtesting_version = "not installed"
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "code_version": code_version(),
        "libraries": {**library_versions(), "backtesting": backtesting_version},
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parts": parts,
    }
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"sweep-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["vs-backtesting", "scaling", "dask", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="scaling: skip the 10,000 x 50,000 cell")
    parser.add_argument("--child", choices=["ours", "theirs", "scaling", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--combos", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--bars", type=int, default=5_000, help=argparse.SUPPRESS)
    parser.add_argument("--contract", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from stratlab.common import prepare_prefect_env

    prepare_prefect_env()  # before anything imports Prefect (tasks.* does)
    if args.child:
        run_child_mode(args)
        return
    runs = {
        "vs-backtesting": (part_vs_backtesting, print_vs_backtesting),
        "scaling": (lambda: part_scaling(args.quick), print_scaling),
        "dask": (part_dask, print_dask),
    }
    chosen = list(runs) if args.part == "all" else [args.part]
    parts = {name: runs[name][0]() for name in chosen}
    for name in chosen:
        runs[name][1](parts[name])
    path = write_results(parts)
    print(f"\nresults: {path.relative_to(REPO)}")
    checks = [c for part in parts.values() for c in part.get("checks", [])]
    for c in checks:
        print(f"check {'ok' if c['ok'] else 'FAILED'}: {c['name']}: {c['detail']}")
    failed = [c for c in checks if not c["ok"]]
    assert not failed, "; ".join(f"{c['name']}: {c['detail']}" for c in failed)


if __name__ == "__main__":
    main()

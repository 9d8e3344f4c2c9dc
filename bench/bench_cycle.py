"""Benchmark whole research cycles the way a user runs them: `stratlab cycle --json` in a fresh process.

Cold: an empty numba cache (vectorbt's JIT compiles everything) and a fresh Prefect home (new database).
Warm: the same caches again. Reports wall time (process start to exit, Prefect's ephemeral server start
included), the flow's own duration and its phases, and the peak resident memory of the process.

    .venv/bin/python bench/bench_cycle.py            # neuro-fuzzy and pilot, 1 cold + 3 warm runs each
    .venv/bin/python bench/bench_cycle.py --warm 1 --strategy strategies/fuzzy_momentum_mlp.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("designing", "features", "training", "backtesting", "assessing", "saving")


def run_once(strategy: Path, env: dict[str, str]) -> dict:
    """One cycle in a child process; wall seconds, its own peak RSS (MiB) and the cycle's JSON result."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "stratlab", "cycle", "--strategy", str(strategy), "--json"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=err,
            text=True,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # reaps the child and returns its resource usage
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if not stdout.strip():
        raise RuntimeError(f"cycle printed no result (exit {proc.returncode}):\n{stderr[-3000:]}")
    result = json.loads(stdout)
    return {
        "wall_s": wall,
        "cycle_s": result["duration_s"],
        "phases": result["phase_seconds"],
        "status": result["status"],
        "reason": result["reason"],
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def bench(strategy: Path, warm_runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="stratlab-bench-") as tmp:
        tmp_path = Path(tmp)
        env = {
            **os.environ,
            "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "STRATLAB_STRATEGIES_DIR": str(tmp_path / "strategies"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        }
        cold = run_once(strategy, env)
        warm = [run_once(strategy, env) for _ in range(warm_runs)]
    return {"strategy": strategy.stem, "cold": cold, "warm": warm}


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def print_table(results: list[dict]) -> None:
    head = f"{'strategy':<22}{'run':<8}{'wall s':>8}{'cycle s':>9}" + "".join(f"{p[:8]:>10}" for p in PHASES)
    print(head + f"{'peak MiB':>10}  outcome")
    print("-" * len(head + "  outcome") + "-" * 10)
    for res in results:
        rows = [("cold", res["cold"])]
        if res["warm"]:
            warm = res["warm"]
            median = {
                "wall_s": _median(warm, "wall_s"),
                "cycle_s": _median(warm, "cycle_s"),
                "phases": {p: statistics.median(r["phases"].get(p, 0.0) for r in warm) for p in PHASES},
                "peak_rss_mib": max(r["peak_rss_mib"] for r in warm),
                "status": warm[-1]["status"],
                "reason": warm[-1]["reason"],
            }
            rows.append((f"warm x{len(warm)}", median))
        for label, r in rows:
            phases = "".join(f"{r['phases'].get(p, 0.0):>10.2f}" for p in PHASES)
            outcome = r["status"] + (f" ({r['reason']})" if r["reason"] else "")
            print(
                f"{res['strategy']:<22}{label:<8}{r['wall_s']:>8.1f}{r['cycle_s']:>9.2f}{phases}"
                f"{r['peak_rss_mib']:>10.0f}  {outcome}"
            )
    print("\nwall = process start to exit (imports + Prefect ephemeral server + cycle); warm = median.")
    print("peak MiB = peak resident memory of the cycle process (os.wait4 rusage; warm: the largest).")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategy", type=Path, action="append", help="contract(s) to run")
    parser.add_argument("--warm", type=int, default=3, help="warm runs per strategy")
    args = parser.parse_args()
    strategies = args.strategy or [
        REPO / "strategies/fuzzy_momentum_mlp.yaml",
        REPO / "strategies/ema_cross_atr.yaml",
    ]
    results = [bench(s.resolve(), args.warm) for s in strategies]
    print_table(results)
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "results": results}
    (out / f"cycle-{stamp}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

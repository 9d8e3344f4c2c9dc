"""Benchmark whole research cycles the way a user runs them: `stratlab cycle --json` in a fresh process.

Three rows per strategy, all in one temporary home (numba cache, Prefect home = step-result storage):

cold    an empty numba cache (vectorbt's JIT compiles everything) and a fresh Prefect home (new
        database, empty step cache); the step cache is on, so this run also fills it.
warm    the numba cache filled, the step cache OFF (``STRATLAB_STEP_CACHE=0``): every step is computed
        again, so this is the cost of the computation itself. Median of ``--warm`` runs (default 3).
cached  the same parameters again with the step cache ON, after the cold run filled it: every cached
        step (design, features, train, backtest, assess) is read back. Median of ``--cached`` runs.

Reports wall time (process start to exit, Prefect's ephemeral server start included), the flow's own
duration and its phases, the peak resident memory of the process, and how many task runs finished
``Cached`` (read from Prefect's task-run log lines, so the rows can be checked: cold and warm 0).

    .venv/bin/python bench/bench_cycle.py            # neuro-fuzzy and pilot: cold, warm x3, cached x1
    .venv/bin/python bench/bench_cycle.py --quick    # pilot only: cold, warm x1, cached x1
    .venv/bin/python bench/bench_cycle.py --warm 1 --strategy strategies/fuzzy_momentum_mlp.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("designing", "features", "training", "backtesting", "assessing", "saving")
# Prefect's console line for a finished task run: "... Task run 'features-abc' - Finished in state Cached(...)"
FINISHED = re.compile(r"Task run '[^']*' - Finished in state\s+(\w+)\(")


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
    states = FINISHED.findall(stderr)
    return {
        "wall_s": wall,
        "cycle_s": result["duration_s"],
        "phases": result["phase_seconds"],
        "status": result["status"],
        "reason": result["reason"],
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "task_runs": len(states),
        "cached_task_runs": states.count("Cached"),
    }


def code_hash(env: dict[str, str]) -> str:
    """The hash the step cache keys on (tasks.edge.code_hash), in a child process: if it differs before
    and after, the code changed during the benchmark and the cached row missed for that reason."""
    probe = "from tasks.edge import code_hash; print(code_hash())"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
    return done.stdout.strip() or f"unknown: {done.stderr.strip()[-300:]}"


def bench(strategy: Path, warm_runs: int, cached_runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="stratlab-bench-") as tmp:
        tmp_path = Path(tmp)
        env = {
            **os.environ,
            "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "STRATLAB_STRATEGIES_DIR": str(tmp_path / "strategies"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO",  # task-run states on stderr, to count hits
            "COLUMNS": "250",  # so that rich does not wrap those lines
        }
        step_cache_on = {**env, "STRATLAB_STEP_CACHE": "1"}
        step_cache_off = {**env, "STRATLAB_STEP_CACHE": "0"}
        code_before = code_hash(env)
        cold = run_once(strategy, step_cache_on)  # fresh Prefect home: every step misses and is stored
        warm = [run_once(strategy, step_cache_off) for _ in range(warm_runs)]
        cached = [run_once(strategy, step_cache_on) for _ in range(cached_runs)]
        code_after = code_hash(env)
    if code_after != code_before:
        print(
            f"warning: {strategy.stem}: tasks/ changed during the benchmark; the step cache missed",
            file=sys.stderr,
        )
    return {
        "strategy": strategy.stem,
        "code_hash": code_before,
        "code_changed": code_after != code_before,
        "cold": cold,
        "warm": warm,
        "cached": cached,
    }


def _median(runs: list[dict]) -> dict:
    """The median run of several: medians of the times, the largest peak memory, the last outcome."""
    return {
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "cycle_s": statistics.median(r["cycle_s"] for r in runs),
        "phases": {p: statistics.median(r["phases"].get(p, 0.0) for r in runs) for p in PHASES},
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "task_runs": max(r["task_runs"] for r in runs),
        "cached_task_runs": min(r["cached_task_runs"] for r in runs),
        "status": runs[-1]["status"],
        "reason": runs[-1]["reason"],
    }


def print_table(results: list[dict]) -> None:
    """A markdown table: one row per strategy and kind of run."""
    cols = ["strategy", "run", "wall s", "cycle s", *PHASES, "peak MiB", "cached steps", "outcome"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join(":---" if c in ("strategy", "run", "outcome") else "---:" for c in cols) + "|")
    for res in results:
        rows = [("cold", res["cold"])]
        for kind in ("warm", "cached"):
            if res.get(kind):
                rows.append((f"{kind} x{len(res[kind])}", _median(res[kind])))
        for label, r in rows:
            outcome = r["status"] + (f" ({r['reason']})" if r["reason"] else "")
            if label.startswith("cached") and res.get("code_changed"):
                outcome += " [code changed during the run: cache missed]"
            cells = [
                res["strategy"],
                label,
                f"{r['wall_s']:.1f}",
                f"{r['cycle_s']:.2f}",
                *(f"{r['phases'].get(p, 0.0):.2f}" for p in PHASES),
                f"{r['peak_rss_mib']:.0f}",
                f"{r['cached_task_runs']}/{r['task_runs']}",
                outcome.replace("|", "\\|"),
            ]
            print("| " + " | ".join(cells) + " |")
    print(
        "\ncold = empty numba cache, new Prefect home; warm = numba cache filled, STRATLAB_STEP_CACHE=0 "
        "(computed); cached = step cache on and filled by the cold run (read back). x N = median of N runs."
    )
    print("wall = process start to exit (imports + Prefect ephemeral server + cycle).")
    print("peak MiB = peak resident memory of the cycle process (os.wait4 rusage; x N: the largest).")
    print("cached steps = task runs that finished Cached / all task runs (x N: the fewest hits).")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategy", type=Path, action="append", help="contract(s) to run")
    parser.add_argument("--warm", type=int, default=3, help="warm runs (step cache off) per strategy")
    parser.add_argument("--cached", type=int, default=1, help="cached re-runs (step cache on) per strategy")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a check that it works: the pilot only (unless --strategy), 1+1+1",
    )
    args = parser.parse_args()
    if args.quick:
        args.warm, args.cached = 1, 1
    strategies = args.strategy or (
        [REPO / "strategies/ema_cross_atr.yaml"]
        if args.quick
        else [REPO / "strategies/fuzzy_momentum_mlp.yaml", REPO / "strategies/ema_cross_atr.yaml"]
    )
    results = [bench(s.resolve(), args.warm, args.cached) for s in strategies]
    print_table(results)
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "rows": {
            "cold": "empty numba cache, new Prefect home, step cache on (fills it)",
            "warm": "numba cache filled, STRATLAB_STEP_CACHE=0",
            "cached": "step cache on, filled by the cold run",
        },
        "results": results,
    }
    path = out / f"cycle-{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"results: {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()

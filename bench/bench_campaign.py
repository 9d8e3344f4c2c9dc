"""Benchmark a whole offline campaign: wall time, trials per second, seconds per iteration by phase,
peak RSS.

Each market runs in a fresh process (``--child``) with a temporary reports folder and Prefect home, so
its peak RSS (``VmHWM``) and its numba/ephemeral-server start-up are its own: the ``stratlab campaign
run`` a user types, in-process, offline designer and critic, shipped data. The default request: the
prompt below, 10 iterations, 200 trials per iteration, 5 anchored walk-forward folds, 20% sealed.
Every stop criterion but the iteration count is switched off (patience, swing window and risk breaches
above 10, PBO stop at 1, no deflation stop), so every run does the same 10 iterations.

Phases, from the iteration files: ``sweep`` (the market's walk-forward sweep, a Prefect task),
``evaluate`` (DSR and PBO over every trial so far, the iteration's files), ``critique`` (the offline
critic and the patch); ``other`` is the rest of the wall time (Prefect's ephemeral server, sealing,
the brief, the holdout and the report).

    .venv/bin/python bench/bench_campaign.py                    # EURUSD 1h and SPX 1d
    .venv/bin/python bench/bench_campaign.py --iterations 3     # a quick look

Numbers land in ``bench/results/campaign-<UTC stamp>.json`` with code and library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPT = "Trend following: a fast EMA crossing a slow one, with ATR stops."
MARKETS = ("EURUSD:1h", "SPX:1d")


def peak_rss_mib() -> float:
    """This process's own peak resident memory (``VmHWM``; see bench/bench_sweep.py for why)."""
    with open("/proc/self/status") as status:
        return int(next(x for x in status if x.startswith("VmHWM:")).split()[1]) / 1024


def child(market: str, iterations: int, trials: int) -> None:
    """One campaign in this process; prints one JSON line of numbers."""
    sys.path.insert(0, str(REPO))
    from stratlab.common import prepare_prefect_env

    prepare_prefect_env()
    began = time.perf_counter()
    from flows.campaign import run_campaign
    from tasks.campaign.report import campaign_dir
    from tasks.campaign.request import parse_request

    request = parse_request(
        {
            "prompt": PROMPT,
            "markets": [market],
            "trials_per_iteration": trials,
            "stop": {
                "max_iterations": iterations,
                "patience": 1000,
                "swing_window": 1000,
                "pbo_stop": 1.0,
                "deflation_stop": False,
                "max_risk_breaches": 1000,
            },
        }
    )
    summary = run_campaign(request, "bench")
    wall = time.perf_counter() - began
    folder = campaign_dir("bench")
    phases = []
    for n in range(1, summary.iterations + 1):
        it = json.loads((folder / "iterations" / f"iter_{n}.json").read_text())
        patch = folder / "patches" / f"iter_{n}.json"
        critique = json.loads(patch.read_text())["seconds"] if patch.is_file() else 0.0
        phases.append({"iteration": n, **it["seconds"], "critique": critique})
    total = {k: round(sum(p[k] for p in phases), 3) for k in ("sweep", "evaluate", "critique")}
    print(
        json.dumps(
            {
                "market": market,
                "iterations": summary.iterations,
                "trials": summary.trials,
                "verdict": summary.verdict,
                "stop_reason": summary.stop_reason,
                "wall_s": round(wall, 2),
                "trials_per_s": round(summary.trials / wall, 1),
                "per_iteration_s": {k: round(v / summary.iterations, 3) for k, v in total.items()},
                "other_s": round(wall - sum(total.values()), 2),
                "phases": phases,
                "peak_rss_mib": round(peak_rss_mib(), 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--market", action="append", help="SYMBOL:timeframe (default: EURUSD:1h, SPX:1d)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.iterations, args.trials)
        return
    rows = []
    for market in args.market or MARKETS:
        with tempfile.TemporaryDirectory(prefix="stratlab-bench-") as home:
            env = {
                **os.environ,
                "STRATLAB_REPORTS_DIR": f"{home}/reports",
                "PREFECT_HOME": f"{home}/prefect",
                "STRATLAB_STEP_CACHE": "0",
            }
            env.pop("PREFECT_API_URL", None)
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    market,
                    "--iterations",
                    str(args.iterations),
                    "--trials",
                    str(args.trials),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"{market}: the campaign failed\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        "| market | iterations | trials | wall s | trials/s | sweep s/it | evaluate s/it | critique s/it | "
        "other s | peak RSS MiB | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p = r["per_iteration_s"]
        print(
            f"| {r['market']} | {r['iterations']} | {r['trials']} | {r['wall_s']} | {r['trials_per_s']} | "
            f"{p['sweep']} | {p['evaluate']} | {p['critique']} | {r['other_s']} | {r['peak_rss_mib']} | "
            f"{r['verdict']} |"
        )
    sys.path.insert(0, str(REPO))
    from tasks.provenance import code_version, library_versions

    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"campaign-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    report = {"rows": rows, "code": code_version(), "libraries": library_versions(), "cpus": os.cpu_count()}
    path.write_text(json.dumps(report, indent=2))
    print(f"\nresults: {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()

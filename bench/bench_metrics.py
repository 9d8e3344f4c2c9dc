"""How fast the metrics exporter answers with many runs in Prefect's API (the observability issue asks for
under 1 s with 1,000 runs).

A local Prefect API (``prefect_test_harness``: a real server on a temporary SQLite database) gets N
``research_cycle`` runs in final states (70% completed, 20% failed at a gate with its labels, 10%
cancelled), each with the ``stratlab.*`` labels a real cycle writes (phase seconds, gate criteria); the
ledger and the reports folders are empty. Then one scrape (``tasks.observe.exporter.exposition``) is
timed: the first in the process, then the best of 5.

    .venv/bin/python bench/bench_metrics.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def populate(n: int) -> None:
    from prefect import flow, get_client
    from prefect.states import Cancelled, Completed, Failed

    @flow(name="research_cycle")
    def research_cycle() -> None:  # the same flow name as the product's; never run
        return None

    phases = {"designing": 0.1, "features": 0.05, "training": 0.02, "backtesting": 1.4, "assessing": 0.03}
    with get_client(sync_client=True) as client:
        for i in range(n):
            kind = "completed" if i % 10 < 7 else "failed" if i % 10 < 9 else "cancelled"
            state = {"completed": Completed(), "failed": Failed(message="gate"), "cancelled": Cancelled()}[
                kind
            ]
            run = client.create_flow_run(research_cycle, name=f"bench-{i}", state=state)
            labels = {f"stratlab.seconds.{p}": s * (1 + i % 7) for p, s in phases.items()}
            labels.update(
                {f"stratlab.gate.backtest.{c}": kind != "failed" for c in ("trades", "win_rate", "sharpe")}
            )
            if kind == "failed":
                labels.update({"stratlab.failed_phase": "backtesting", "stratlab.failure": "gate"})
            labels["stratlab.phase"] = "saving" if kind == "completed" else "backtesting"
            client.update_flow_run_labels(run.id, labels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="bench-metrics-")
    os.environ.update(
        {
            "STRATLAB_REPORTS_DIR": os.path.join(scratch, "reports"),
            "STRATLAB_EXPORTS_DIR": os.path.join(scratch, "exports"),
            "STRATLAB_LEDGER": os.path.join(scratch, "ledger.sqlite3"),
        }
    )
    from stratlab.cli import prepare_prefect_env

    prepare_prefect_env()
    from prefect.testing.utilities import prefect_test_harness

    from tasks.observe.exporter import exposition

    with prefect_test_harness(server_startup_timeout=120):
        started = time.perf_counter()
        populate(args.runs)
        print(f"{args.runs} runs created in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        text = exposition()
        first = time.perf_counter() - started
        times = []
        for _ in range(5):
            started = time.perf_counter()
            exposition()
            times.append(time.perf_counter() - started)
    completed = next(line for line in text.splitlines() if 'outcome="completed"' in line)
    print(completed)
    print(
        f"scrape with {args.runs} runs: first {first:.3f} s, best of 5 {min(times):.3f} s, worst {max(times):.3f} s"
    )


if __name__ == "__main__":
    main()

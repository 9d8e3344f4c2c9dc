"""Ledger soak: 8 processes x 500 reserve/settle pairs against a budget that runs out midway, on SQLite and
on PostgreSQL, while processes are SIGKILLed, some of them inside the ledger's locked transaction.

    .venv/bin/python bench/soak_ledger.py [--processes 8] [--pairs 500] [--seed 7] [--backends sqlite,postgresql]

Each pair reserves $0.01 (the worst case) and settles at a seeded random cost between 30% and 100% of it
(one in ten is released instead: an error answer that cost nothing). The limit is about half of what
all pairs would cost, so reservations start being refused midway. Meanwhile the parent SIGKILLs random
processes at random moments, and some processes SIGKILL themselves while holding the ledger's write lock
(inside the transaction a reservation is taken in). A killed process is started again until every
process has made its 500 attempts.

Checks, per database: the committed total (settled costs plus open reservations at their worst case)
never exceeds the limit; the ledger's totals (what the metrics exporter reads) equal the sum of settled
rows plus open reservations, computed from the rows themselves; every settlement a process saw
succeed is in the ledger with its cost; every open reservation belongs to a killed process. PostgreSQL
is Debian's, started in a temporary folder (tests/postgres.py). Exits non-zero on any failed check.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESERVE = 0.01


def _worker(url: str, limit: float, journal: str, seed: int, pairs: int, suicide_at: int | None) -> None:
    """Make `pairs` attempts (continuing where a killed predecessor stopped, per the journal)."""
    import sqlalchemy as sa

    from tasks.llm.budget import BudgetExhausted, BudgetLedger
    from tasks.llm.pricing import TokenUsage

    ledger = BudgetLedger(url=url, limit_usd=limit)
    done = len(Path(journal).read_text().splitlines()) if Path(journal).exists() else 0
    rng = random.Random(seed * 100_003 + done)
    with open(journal, "a") as out:
        for attempt in range(done, pairs):
            if attempt == suicide_at:
                with ledger._locked() as db:  # the real lock, as reserve takes it
                    db.execute(sa.text("SELECT COUNT(*) FROM ledger"))
                    os.kill(os.getpid(), signal.SIGKILL)
            try:
                rid = ledger.reserve(RESERVE, "soak")
            except BudgetExhausted:
                entry = {"attempt": attempt, "refused": True}
            else:
                if rng.random() < 0.1:
                    ledger.release(rid)
                    entry = {"attempt": attempt, "id": rid, "released": True}
                else:
                    cost = round(RESERVE * rng.uniform(0.3, 1.0), 6)
                    ledger.settle(rid, cost, TokenUsage(input_tokens=100, output_tokens=10))
                    entry = {"attempt": attempt, "id": rid, "cost": cost}
            out.write(json.dumps(entry) + "\n")
            out.flush()
            os.fsync(out.fileno())


def _lines(journal: str) -> int:
    path = Path(journal)
    return len(path.read_text().splitlines()) if path.exists() else 0


def soak(url: str, processes: int, pairs: int, seed: int, folder: Path) -> dict:
    """Run the soak against one database; return its figures and whether every check held."""
    import sqlalchemy as sa

    from tasks.llm.budget import BudgetLedger

    rng = random.Random(seed)
    limit = round(processes * pairs * RESERVE * 0.65 * 0.9 / 2, 2)  # about half of the expected spend
    BudgetLedger(url=url, limit_usd=limit)  # the table, before anyone races to create it
    ctx = multiprocessing.get_context("spawn")
    journals = [str(folder / f"journal-{i}.jsonl") for i in range(processes)]
    suicides = {i: rng.randrange(pairs) for i in rng.sample(range(processes), k=max(processes // 4, 1))}
    procs: dict[int, multiprocessing.Process] = {}
    begun_at: dict[int, int] = {}
    victims: set[int] = set()  # pids the parent killed
    died_in_lock: set[int] = set()  # processes that killed themselves holding the ledger's lock
    started = time.monotonic()

    def start(i: int) -> None:
        suicide = None if i in died_in_lock else suicides.get(i)
        procs[i] = ctx.Process(target=_worker, args=(url, limit, journals[i], seed + i, pairs, suicide))
        begun_at[i] = _lines(journals[i])
        procs[i].start()

    for i in range(processes):
        start(i)
    kills_left = processes  # external kills: about one per process
    while procs:
        time.sleep(rng.uniform(0.05, 0.6))
        for i, p in list(procs.items()):
            if p.exitcode is None:
                continue
            del procs[i]
            lines = _lines(journals[i])
            if p.exitcode == -signal.SIGKILL and p.pid not in victims and lines == suicides.get(i):
                died_in_lock.add(i)
            if lines < pairs:
                start(i)  # killed: a new process carries on
        working = [i for i in procs if _lines(journals[i]) > begun_at[i]]  # past its imports, in the loop
        if kills_left and working and rng.random() < 0.5:
            victim = rng.choice(working)
            os.kill(procs[victim].pid, signal.SIGKILL)
            victims.add(procs[victim].pid)
            kills_left -= 1
    seconds = time.monotonic() - started
    killed_outside, killed_inside = len(victims), len(died_in_lock)

    entries = [json.loads(line) for j in journals for line in Path(j).read_text().splitlines()]
    ledger = BudgetLedger(url=url, limit_usd=limit)
    with ledger.engine.connect() as db:
        rows = {r.id: r for r in db.execute(sa.text("SELECT id, status, reserved_usd, cost_usd FROM ledger"))}
    settled = sum(r.cost_usd for r in rows.values() if r.status == "settled")
    open_rows = [r for r in rows.values() if r.status == "reserved"]
    committed = settled + sum(r.reserved_usd for r in open_rows)
    totals = sum(t["usd"] for t in ledger.totals())
    acknowledged = [e for e in entries if "cost" in e]
    lost = [e for e in acknowledged if rows.get(e["id"]) is None or rows[e["id"]].cost_usd != e["cost"]]
    figures = {
        "limit": limit,
        "attempts": len(entries),
        "reserved": len(rows),
        "settled": sum(r.status == "settled" for r in rows.values()),
        "released": sum(r.status == "released" for r in rows.values()),
        "refused": sum(bool(e.get("refused")) for e in entries),
        "killed": f"{killed_outside} + {killed_inside} in the lock",
        "open": len(open_rows),
        "committed": committed,
        "overspend": max(committed - limit, 0.0),
        "totals_match": abs(totals - committed) < 1e-9,
        "lost_settlements": len(lost),
        "seconds": seconds,
    }
    figures["ok"] = (
        committed <= limit + 1e-9
        and figures["totals_match"]
        and not lost
        and figures["open"] <= killed_outside + killed_inside
        and figures["attempts"] == processes * pairs
        and figures["refused"] > 0
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="soak-ledger-") as tmp:
        for backend in args.backends.split(","):
            folder = Path(tmp) / backend
            folder.mkdir()
            if backend == "sqlite":
                results[backend] = soak(
                    f"sqlite:///{folder / 'ledger.sqlite3'}", args.processes, args.pairs, args.seed, folder
                )
            else:
                from tests.postgres import LocalPostgres

                with LocalPostgres() as pg:
                    url = pg.create_database("soak")
                    results[backend] = soak(url, args.processes, args.pairs, args.seed, folder)
    print(
        f"{args.processes} processes x {args.pairs} reserve/settle pairs of ${RESERVE} each, seed {args.seed}\n"
    )
    print(
        "| database | limit $ | attempts | reserved | settled | released | refused | SIGKILLs | open left "
        "| committed $ | overspend $ | totals = rows | settlements lost | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, f in results.items():
        print(
            f"| {name} | {f['limit']:.2f} | {f['attempts']} | {f['reserved']} | {f['settled']} | {f['released']} "
            f"| {f['refused']} | {f['killed']} | {f['open']} | {f['committed']:.4f} | {f['overspend']:.4f} "
            f"| {'yes' if f['totals_match'] else 'NO'} | {f['lost_settlements']} | {f['seconds']:.1f} |"
        )
    failed = [name for name, f in results.items() if not f["ok"]]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

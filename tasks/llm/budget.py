"""A daily spending limit for LLM calls that can never be overspent (seed 000, "Budget Enforcement").

Before each request its worst case is *reserved*; after it the real cost is *settled*. Reservations
and settlements are rows in a SQLite ledger, written in ``BEGIN IMMEDIATE`` transactions, so two
processes can never both take the last dollar. A process that dies between reserve and settle leaves
its reservation counted at the worst case: spend is never lost and never counted twice. The day is
the UTC date, so the limit resets at midnight UTC.

Settings: ``$STRATLAB_DAILY_BUDGET_USD`` (default 5.0) and ``$STRATLAB_LEDGER`` (default
``~/.stratlab/ledger.sqlite3``). One ledger file serves every process on a machine; a fleet of
machines needs it on shared storage.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from tasks.llm.pricing import TokenUsage
from tasks.processes import alive

DEFAULT_DAILY_USD = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    id TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('reserved', 'settled', 'released')),
    reserved_usd REAL NOT NULL,
    cost_usd REAL,
    purpose TEXT NOT NULL,
    cycle_id TEXT,
    model TEXT,
    input_tokens INTEGER DEFAULT 0,
    output_tokens INTEGER DEFAULT 0,
    cache_write_tokens INTEGER DEFAULT 0,
    cache_read_tokens INTEGER DEFAULT 0,
    host TEXT,
    pid INTEGER,
    created_at TEXT NOT NULL,
    settled_at TEXT
);
CREATE INDEX IF NOT EXISTS ledger_day ON ledger (day);
"""


class BudgetExhausted(RuntimeError):
    """A request does not fit in what is left of today's budget; it was not sent."""

    reason = "budget_exhausted"


class Reservation(BaseModel):
    id: str
    purpose: str
    cycle_id: str | None
    reserved_usd: float
    created_at: str
    host: str | None
    pid: int | None
    orphaned: bool  # its process on this host is gone: it stays counted at the worst case


class BudgetStatus(BaseModel):
    day: str
    limit_usd: float
    spent_usd: float
    reserved_usd: float
    remaining_usd: float
    calls: int
    reservations: list[Reservation]
    per_cycle: dict[str, float]
    ledger: str


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def daily_limit() -> float:
    raw = os.environ.get("STRATLAB_DAILY_BUDGET_USD", str(DEFAULT_DAILY_USD))
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"STRATLAB_DAILY_BUDGET_USD: '{raw}' is not a number of dollars") from None
    if value < 0:
        raise ValueError(f"STRATLAB_DAILY_BUDGET_USD: {value} is negative")
    return value


def ledger_path() -> Path:
    return Path(os.environ.get("STRATLAB_LEDGER") or Path.home() / ".stratlab" / "ledger.sqlite3")


class BudgetLedger:
    """The persistent ledger. Each method is one short transaction; nothing is cached in memory."""

    def __init__(self, path: Path | None = None, limit_usd: float | None = None):
        self.path = Path(path) if path else ledger_path()
        self.limit_usd = daily_limit() if limit_usd is None else limit_usd
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    @staticmethod
    def _committed(db: sqlite3.Connection, day: str) -> float:
        """Settled costs plus open reservations at their worst case."""
        row = db.execute(
            "SELECT COALESCE(SUM(CASE status WHEN 'settled' THEN cost_usd WHEN 'reserved' THEN reserved_usd "
            "ELSE 0 END), 0) FROM ledger WHERE day = ?",
            (day,),
        ).fetchone()
        return float(row[0])

    def reserve(
        self, amount_usd: float, purpose: str, cycle_id: str | None = None, model: str | None = None
    ) -> str:
        """Set aside `amount_usd` of today's budget, or raise BudgetExhausted without touching it."""
        day = today()
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            try:
                committed = self._committed(db, day)
                if committed + amount_usd > self.limit_usd + 1e-12:
                    raise BudgetExhausted(
                        f"budget_exhausted: {purpose} needs up to ${amount_usd:.4f} but only "
                        f"${max(self.limit_usd - committed, 0):.4f} of today's ${self.limit_usd:.2f} is left"
                    )
                rid = uuid.uuid4().hex
                db.execute(
                    "INSERT INTO ledger (id, day, status, reserved_usd, purpose, cycle_id, model, host, pid, "
                    "created_at) VALUES (?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?)",
                    (
                        rid,
                        day,
                        amount_usd,
                        purpose,
                        cycle_id,
                        model,
                        socket.gethostname(),
                        os.getpid(),
                        datetime.now(UTC).isoformat(timespec="seconds"),
                    ),
                )
                db.execute("COMMIT")
                return rid
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def settle(self, reservation_id: str, cost: float, usage: TokenUsage) -> None:
        """Replace a reservation by the real cost. Settling twice changes nothing."""
        with closing(self._connect()) as db:
            db.execute(
                "UPDATE ledger SET status = 'settled', cost_usd = ?, input_tokens = ?, output_tokens = ?, "
                "cache_write_tokens = ?, cache_read_tokens = ?, settled_at = ? WHERE id = ? AND status = 'reserved'",
                (
                    cost,
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cache_write_tokens,
                    usage.cache_read_tokens,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    reservation_id,
                ),
            )

    def release(self, reservation_id: str) -> None:
        """Give a reservation back: the request was answered with an error and cost nothing."""
        with closing(self._connect()) as db:
            db.execute(
                "UPDATE ledger SET status = 'released', cost_usd = 0, settled_at = ? "
                "WHERE id = ? AND status = 'reserved'",
                (datetime.now(UTC).isoformat(timespec="seconds"), reservation_id),
            )

    def totals(self) -> list[dict]:
        """Every call ever recorded, summed per (purpose, status): calls, tokens by kind, dollars (settled
        cost; an open reservation counts its worst case). What the metrics exporter counts."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT purpose, status, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
                "SUM(cache_write_tokens), SUM(cache_read_tokens), "
                "SUM(CASE status WHEN 'reserved' THEN reserved_usd ELSE COALESCE(cost_usd, 0) END) "
                "FROM ledger GROUP BY purpose, status ORDER BY purpose, status"
            ).fetchall()
        keys = ("purpose", "status", "calls", "input", "output", "cache_write", "cache_read", "usd")
        return [dict(zip(keys, (r[0], r[1], *(x or 0 for x in r[2:])), strict=True)) for r in rows]

    def status(self) -> BudgetStatus:
        day = today()
        host = socket.gethostname()
        with closing(self._connect()) as db:
            committed = self._committed(db, day)
            spent, calls = db.execute(
                "SELECT COALESCE(SUM(cost_usd), 0), COUNT(*) FROM ledger WHERE day = ? AND status = 'settled'",
                (day,),
            ).fetchone()
            open_rows = db.execute(
                "SELECT id, purpose, cycle_id, reserved_usd, created_at, host, pid FROM ledger "
                "WHERE day = ? AND status = 'reserved' ORDER BY created_at",
                (day,),
            ).fetchall()
            per_cycle = dict(
                db.execute(
                    "SELECT COALESCE(cycle_id, '-'), SUM(cost_usd) FROM ledger WHERE day = ? AND status = 'settled' "
                    "GROUP BY cycle_id ORDER BY MIN(created_at)",
                    (day,),
                ).fetchall()
            )
        reservations = [
            Reservation(
                id=r[0],
                purpose=r[1],
                cycle_id=r[2],
                reserved_usd=r[3],
                created_at=r[4],
                host=r[5],
                pid=r[6],
                orphaned=r[5] == host and r[6] is not None and not alive(r[6]),
            )
            for r in open_rows
        ]
        return BudgetStatus(
            day=day,
            limit_usd=self.limit_usd,
            spent_usd=float(spent),
            reserved_usd=committed - float(spent),
            remaining_usd=max(self.limit_usd - committed, 0.0),
            calls=int(calls),
            reservations=reservations,
            per_cycle={k: round(v, 6) for k, v in per_cycle.items()},
            ledger=str(self.path),
        )

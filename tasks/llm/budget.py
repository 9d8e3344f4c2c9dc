"""A daily spending limit for LLM calls that can never be overspent (seed 000, "Budget Enforcement").

Before each request its worst case is *reserved*; after it the real cost is *settled*. Reservations
and settlements are rows in a ledger database. A reservation is taken inside a transaction that holds
the database's own write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory
lock), so two processes, on one machine or on many, can never both take the last dollar. A process
that dies between reserve and settle leaves its reservation counted at the worst case: spend is never
lost and never counted twice. A process killed inside the transaction loses nothing either: the
database rolls it back and releases the lock. The day is the UTC date, so the limit resets at midnight
UTC.

Settings: ``$STRATLAB_DAILY_BUDGET_USD`` (default 5.0) and where the ledger lives:

- ``$STRATLAB_LEDGER_URL``: an SQLAlchemy URL. ``postgresql://user:pass@host:5432/db`` (driver
  psycopg 3) gives one ledger to a fleet of machines; ``sqlite:////path/ledger.sqlite3`` works too.
- else ``$STRATLAB_LEDGER``: an SQLite file (default ``~/.stratlab/ledger.sqlite3``), the embedded
  default for one machine.
"""

from __future__ import annotations

import os
import socket
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel

from tasks.llm.pricing import TokenUsage
from tasks.processes import alive

DEFAULT_DAILY_USD = 5.0
LEDGER_URL_ENV = "STRATLAB_LEDGER_URL"
# The key of the PostgreSQL advisory lock that serialises reservations (any fixed 64-bit number).
_PG_LOCK = zlib.crc32(b"stratlab-budget-ledger")

_META = sa.MetaData()
LEDGER = sa.Table(
    "ledger",
    _META,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, nullable=False, index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reserved_usd", sa.Float, nullable=False),
    sa.Column("cost_usd", sa.Float),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("cycle_id", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("input_tokens", sa.Integer, server_default="0"),
    sa.Column("output_tokens", sa.Integer, server_default="0"),
    sa.Column("cache_write_tokens", sa.Integer, server_default="0"),
    sa.Column("cache_read_tokens", sa.Integer, server_default="0"),
    sa.Column("host", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("settled_at", sa.Text),
    sa.CheckConstraint("status IN ('reserved', 'settled', 'released')", name="ledger_status"),
)


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


def ledger_url() -> str:
    """``$STRATLAB_LEDGER_URL``, else the SQLite file of ``ledger_path()``."""
    return os.environ.get(LEDGER_URL_ENV, "").strip() or f"sqlite:///{ledger_path()}"


def _engine(url: str) -> sa.Engine:
    """An engine whose ``begin()`` takes the database's write lock where that is how it serialises.
    A plain ``postgresql://`` URL is given the psycopg 3 driver."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ValueError(f"{LEDGER_URL_ENV}: '{url}' is not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30}, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # transactions are begun below, not by the driver
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=FULL")

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # one writer at a time, across processes

        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 10})
    raise ValueError(
        f"{LEDGER_URL_ENV}: '{parsed.get_backend_name()}' is not supported; use postgresql or sqlite"
    )


class BudgetLedger:
    """The persistent ledger. Each method is one short transaction; nothing is cached in memory."""

    def __init__(
        self, path: Path | str | None = None, limit_usd: float | None = None, url: str | None = None
    ):
        if path is not None and url is not None:
            raise ValueError("give the ledger a path or a url, not both")
        self.url = url or (f"sqlite:///{Path(path)}" if path is not None else ledger_url())
        self.limit_usd = daily_limit() if limit_usd is None else limit_usd
        self.engine = _engine(self.url)
        self.postgres = self.engine.dialect.name == "postgresql"
        with self._locked() as db:
            _META.create_all(db)

    @property
    def where(self) -> str:
        """The ledger's location as shown to users: the URL without its password."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def _locked(self) -> Iterator[sa.Connection]:
        """A transaction that holds the ledger's write lock until it commits or rolls back."""
        with self.engine.begin() as db:
            if self.postgres:
                db.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            yield db

    @staticmethod
    def _committed(db: sa.Connection, day: str) -> float:
        """Settled costs plus open reservations at their worst case."""
        value = db.execute(
            sa.text(
                "SELECT COALESCE(SUM(CASE status WHEN 'settled' THEN cost_usd WHEN 'reserved' THEN reserved_usd "
                "ELSE 0 END), 0) FROM ledger WHERE day = :day"
            ),
            {"day": day},
        ).scalar_one()
        return float(value)

    def reserve(
        self, amount_usd: float, purpose: str, cycle_id: str | None = None, model: str | None = None
    ) -> str:
        """Set aside `amount_usd` of today's budget, or raise BudgetExhausted without touching it."""
        day = today()
        rid = uuid.uuid4().hex
        with self._locked() as db:
            committed = self._committed(db, day)
            if committed + amount_usd > self.limit_usd + 1e-12:
                raise BudgetExhausted(
                    f"budget_exhausted: {purpose} needs up to ${amount_usd:.4f} but only "
                    f"${max(self.limit_usd - committed, 0):.4f} of today's ${self.limit_usd:.2f} is left"
                )
            db.execute(
                LEDGER.insert().values(
                    id=rid,
                    day=day,
                    status="reserved",
                    reserved_usd=amount_usd,
                    purpose=purpose,
                    cycle_id=cycle_id,
                    model=model,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    created_at=_now(),
                )
            )
        return rid

    def settle(self, reservation_id: str, cost: float, usage: TokenUsage) -> None:
        """Replace a reservation by the real cost. Settling twice changes nothing."""
        with self.engine.begin() as db:
            db.execute(
                LEDGER.update()
                .where(LEDGER.c.id == reservation_id, LEDGER.c.status == "reserved")
                .values(
                    status="settled",
                    cost_usd=cost,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_write_tokens=usage.cache_write_tokens,
                    cache_read_tokens=usage.cache_read_tokens,
                    settled_at=_now(),
                )
            )

    def release(self, reservation_id: str) -> None:
        """Give a reservation back: the request was answered with an error and cost nothing."""
        with self.engine.begin() as db:
            db.execute(
                LEDGER.update()
                .where(LEDGER.c.id == reservation_id, LEDGER.c.status == "reserved")
                .values(status="released", cost_usd=0, settled_at=_now())
            )

    def totals(self) -> list[dict]:
        """Every call ever recorded, summed per (purpose, status): calls, tokens by kind, dollars (settled
        cost; an open reservation counts its worst case). What the metrics exporter counts."""
        with self.engine.connect() as db:
            rows = db.execute(
                sa.text(
                    "SELECT purpose, status, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
                    "SUM(cache_write_tokens), SUM(cache_read_tokens), "
                    "SUM(CASE status WHEN 'reserved' THEN reserved_usd ELSE COALESCE(cost_usd, 0) END) "
                    "FROM ledger GROUP BY purpose, status ORDER BY purpose, status"
                )
            ).all()
        keys = ("purpose", "status", "calls", "input", "output", "cache_write", "cache_read", "usd")
        return [dict(zip(keys, (r[0], r[1], *(x or 0 for x in r[2:])), strict=True)) for r in rows]

    def status(self) -> BudgetStatus:
        day = today()
        host = socket.gethostname()
        with self.engine.connect() as db:
            committed = self._committed(db, day)
            spent, calls = db.execute(
                sa.text(
                    "SELECT COALESCE(SUM(cost_usd), 0), COUNT(*) FROM ledger "
                    "WHERE day = :day AND status = 'settled'"
                ),
                {"day": day},
            ).one()
            open_rows = db.execute(
                sa.text(
                    "SELECT id, purpose, cycle_id, reserved_usd, created_at, host, pid FROM ledger "
                    "WHERE day = :day AND status = 'reserved' ORDER BY created_at, id"
                ),
                {"day": day},
            ).all()
            per_cycle = dict(
                db.execute(
                    sa.text(
                        "SELECT COALESCE(cycle_id, '-'), SUM(cost_usd) FROM ledger "
                        "WHERE day = :day AND status = 'settled' GROUP BY cycle_id ORDER BY MIN(created_at)"
                    ),
                    {"day": day},
                ).all()
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
            ledger=self.where,
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

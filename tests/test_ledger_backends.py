"""The budget ledger gives the same guarantees on SQLite (one machine) and PostgreSQL (a fleet): reserve
before each request, settle after, never overspent, a crash leaves the worst case counted, settling twice
changes nothing. Each test runs on both databases."""

from __future__ import annotations

import multiprocessing
import os
import uuid

import pytest

from tasks.llm.budget import BudgetExhausted, BudgetLedger
from tasks.llm.pricing import TokenUsage


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"ledger_{uuid.uuid4().hex[:8]}")


def _race(url: str, barrier, results) -> None:
    """Wait for every racer, then try to take $0.60 three times."""
    ledger = BudgetLedger(url=url, limit_usd=5.0)
    barrier.wait()
    for _ in range(3):
        try:
            ledger.reserve(0.6, "race")
            results.put("won")
        except BudgetExhausted:
            results.put("refused")


def test_eight_processes_racing_for_the_last_dollars_never_overspend(ledger_url):
    ledger = BudgetLedger(url=ledger_url, limit_usd=5.0)
    ledger.settle(ledger.reserve(2.0, "earlier"), 2.0, TokenUsage())  # $3 left: room for five of 24 tries
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(ledger_url, barrier, results)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    outcomes = [results.get(timeout=10) for _ in range(24)]
    assert outcomes.count("won") == 5
    status = ledger.status()
    assert status.spent_usd + status.reserved_usd == pytest.approx(5.0)
    assert status.remaining_usd == pytest.approx(0.0)
    assert len(status.reservations) == 5


def _reserve_and_die(url: str) -> None:
    BudgetLedger(url=url, limit_usd=5.0).reserve(0.25, "design")
    os._exit(1)


def test_a_crash_between_reserve_and_settle_keeps_the_worst_case_and_settles_once(ledger_url):
    proc = multiprocessing.get_context("spawn").Process(target=_reserve_and_die, args=(ledger_url,))
    proc.start()
    proc.join(60)
    ledger = BudgetLedger(url=ledger_url, limit_usd=5.0)
    status = ledger.status()
    assert status.reserved_usd == pytest.approx(0.25) and status.remaining_usd == pytest.approx(4.75)
    assert status.reservations[0].orphaned
    ledger.settle(status.reservations[0].id, 0.05, TokenUsage(input_tokens=10))
    ledger.settle(status.reservations[0].id, 0.07, TokenUsage(input_tokens=99))  # no effect
    ledger.release(status.reservations[0].id)  # no effect either
    after = ledger.status()
    assert after.spent_usd == pytest.approx(0.05) and after.reserved_usd == 0 and after.calls == 1
    [row] = ledger.totals()
    assert (row["status"], row["calls"], row["input"], row["usd"]) == ("settled", 1, 10, pytest.approx(0.05))


def test_a_request_that_does_not_fit_is_refused_and_changes_nothing(ledger_url):
    ledger = BudgetLedger(url=ledger_url, limit_usd=1.0)
    ledger.release(ledger.reserve(0.9, "design"))  # answered with an error: costs nothing
    kept = ledger.reserve(0.9, "design")
    with pytest.raises(BudgetExhausted, match=r"needs up to \$0.5000 but only \$0.1000"):
        ledger.reserve(0.5, "assess")
    status = ledger.status()
    assert [r.id for r in status.reservations] == [kept] and status.remaining_usd == pytest.approx(0.1)


def test_the_ledger_location_is_shown_without_its_password(postgres):
    url = postgres.create_database("ledger_password").replace("stratlab@", "stratlab:s3cret@")
    shown = BudgetLedger(url=url, limit_usd=1.0).status().ledger
    assert "s3cret" not in shown and shown.startswith("postgresql+psycopg://stratlab:***@127.0.0.1:")


def test_an_unsupported_ledger_url_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("STRATLAB_LEDGER_URL", "mysql://x@127.0.0.1/db")
    with pytest.raises(ValueError, match="STRATLAB_LEDGER_URL: 'mysql' is not supported"):
        BudgetLedger()
    monkeypatch.setenv("STRATLAB_LEDGER_URL", "not a url")
    with pytest.raises(ValueError, match="STRATLAB_LEDGER_URL: 'not a url' is not a database URL"):
        BudgetLedger()

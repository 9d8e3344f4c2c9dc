"""The LLM fault matrix: whatever the Messages API does, a Claude-designed cycle ends with a reason a person
can read, the budget ledger settled (no reservation left open), and nothing written.

Each row runs the whole cycle with ``designer="claude"`` against tests/fake_anthropic.py, the real
``anthropic`` SDK on the other side of a socket. Timeouts and back-off are set short through the
session's environment settings (``STRATLAB_LLM_TIMEOUT_S``, ``STRATLAB_LLM_BACKOFF_S``), so the matrix
takes seconds. ``bench/llm_faults.py`` runs the same rows and prints them as a table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import test_claude
from conftest import tree
from fake_anthropic import FakeAnthropic, Reply, error, malformed, reset, slow, text, tool_use
from test_claude import RULE_CONTRACT, run

from tasks.llm.budget import BudgetLedger
from tasks.llm.prompts import DESIGN_MAX_TOKENS

fake = test_claude.fake  # the same fixture: the server, a fake key and a private ledger per test
pytestmark = pytest.mark.usefixtures("prefect_api")

TIMEOUT_S = 1.0  # the client's timeout in this matrix (a busy machine still answers well within it)
SLOW_S = 4.0  # the slow reply takes longer
FAULT_ENV = {
    "STRATLAB_LLM_TIMEOUT_S": str(TIMEOUT_S),
    "STRATLAB_LLM_BACKOFF_S": "0.01",
    # the operator lowers the bar, so that the row that recovers runs to the end
    "STRATLAB_GATES_BACKTEST_MIN_SHARPE": "-100",
    "STRATLAB_GATES_BACKTEST_MIN_WIN_RATE": "0",
}
ATTEMPTS = 4  # the session's default
RETRY_AFTER_S = 1  # what the 429 asks the client to wait
RATE_LIMITED = "Number of request tokens has exceeded your per-minute rate limit"
NOT_A_LIST = {**RULE_CONTRACT, "markets": "SPX"}  # the schema says an array of symbols


@dataclass(frozen=True)
class Fault:
    """One row: what the server does, and how the cycle must end."""

    name: str
    server: str  # what the server did, in words
    replies: tuple[Reply, ...]
    reason: str | None  # the cycle's reason, exactly; None: the cycle completes
    settled: int  # ledger rows settled (answered, or possibly billed at the worst case)
    released: int  # ledger rows given back (error answers: not billed)

    @property
    def requests(self) -> int:
        return len(self.replies)


FAULTS = (
    Fault(
        "timeout",
        f"answers after {SLOW_S:g} s; the client waits {TIMEOUT_S:g} s (x{ATTEMPTS})",
        (slow(SLOW_S),) * ATTEMPTS,
        f"design: no answer from the Anthropic API after {ATTEMPTS} attempts: the last timed out after "
        f"{TIMEOUT_S:g} s (set STRATLAB_LLM_TIMEOUT_S to wait longer)",
        settled=ATTEMPTS,
        released=0,
    ),
    Fault(
        "connection reset",
        f"reads the request, closes the socket with RST (x{ATTEMPTS})",
        (reset(),) * ATTEMPTS,
        f"design: no answer from the Anthropic API after {ATTEMPTS} attempts: the last lost its connection "
        "before the answer came (the connection was closed or reset)",
        settled=ATTEMPTS,
        released=0,
    ),
    Fault(
        "429 then success",
        f"429 retry-after: {RETRY_AFTER_S}, then save_contract",
        (
            error(429, "rate_limit_error", RATE_LIMITED, retry_after=str(RETRY_AFTER_S)),
            tool_use("save_contract", RULE_CONTRACT),
        ),
        None,
        settled=1,
        released=1,
    ),
    Fault(
        "429 every time",
        f"429 retry-after: {RETRY_AFTER_S} (x{ATTEMPTS})",
        (error(429, "rate_limit_error", RATE_LIMITED, retry_after=str(RETRY_AFTER_S)),) * ATTEMPTS,
        f"design: Anthropic API rate limited (429) after {ATTEMPTS} attempts: {RATE_LIMITED}",
        settled=0,
        released=ATTEMPTS,
    ),
    Fault(
        "500",
        f"500 api_error (x{ATTEMPTS})",
        (error(500, "api_error", "Internal server error"),) * ATTEMPTS,
        f"design: Anthropic API server error (500) after {ATTEMPTS} attempts: Internal server error",
        settled=0,
        released=ATTEMPTS,
    ),
    Fault(
        "529 overloaded",
        f"529 overloaded_error (x{ATTEMPTS})",
        (error(529, "overloaded_error", "Overloaded"),) * ATTEMPTS,
        f"design: Anthropic API overloaded (529) after {ATTEMPTS} attempts: Overloaded",
        settled=0,
        released=ATTEMPTS,
    ),
    Fault(
        "malformed JSON",
        "200 with a JSON body cut short",
        (malformed(),),
        "design: the Anthropic API answered with a body that is not a Message (invalid JSON at line 1 "
        "column 50); not retried, charged at its worst case",
        settled=1,
        released=0,
    ),
    Fault(
        "tool input off schema",
        'save_contract with markets: "SPX" (x3)',
        (tool_use("save_contract", NOT_A_LIST),) * 3,
        "design: nothing valid after 3 attempts; last error: markets: Input should be a valid list (got 'SPX')",
        settled=3,
        released=0,
    ),
    Fault(
        "refusal",
        "stop_reason: refusal",
        (text("I can't help with that.", stop_reason="refusal"),),
        "design: Claude declined to write a contract (stop_reason: refusal)",
        settled=1,
        released=0,
    ),
    Fault(
        "max_tokens",
        "stop_reason: max_tokens",
        (text("Let me think about momentum on the S&P 500...", stop_reason="max_tokens"),),
        f"design: the answer reached max_tokens ({DESIGN_MAX_TOKENS}) before a contract was saved",
        settled=1,
        released=0,
    ),
    Fault(
        "no save tool",
        "text only, stop_reason: end_turn",
        (text("Here is my idea: buy low, sell high."),),
        "design: Claude ended its turn without saving a contract (stop_reason: end_turn)",
        settled=1,
        released=0,
    ),
)


@dataclass(frozen=True)
class Outcome:
    """How one row ended: what the person sees, what the server saw, the ledger, and the folders."""

    completed: bool
    reason: str | None
    strategy_id: str | None
    requests: int
    pending: int  # queued replies the cycle never asked for
    gaps_s: list[float]  # seconds between consecutive requests
    ledger: dict[str, int]  # rows per status: reserved, settled, released
    open_usd: float  # what open reservations still hold
    settled_usd: float  # the settled rows' dollars, from totals()
    spent_usd: float  # status().spent_usd
    written: list[str]  # files and folders that were not there before, under strategies and reports
    seconds: float


def run_fault(server: FakeAnthropic, fault: Fault, strategies: Path, reports: Path) -> Outcome:
    """Queue the row's replies, run a cycle with Claude designing, and read back what happened."""
    before = [f"strategies/{p}" for p in tree(strategies)] + [f"reports/{p}" for p in tree(reports)]
    server.queue(*fault.replies)
    asked = len(server.requests)
    started = time.monotonic()
    state, result = run(designer="claude", assessor="local", symbol="SPX")
    seconds = time.monotonic() - started
    after = [f"strategies/{p}" for p in tree(strategies)] + [f"reports/{p}" for p in tree(reports)]
    ledger = BudgetLedger()
    status, totals = ledger.status(), ledger.totals()
    rows = {
        k: sum(r["calls"] for r in totals if r["status"] == k) for k in ("reserved", "settled", "released")
    }
    times = server.times[asked:]
    return Outcome(
        completed=state.is_completed(),
        reason=result.reason,
        strategy_id=result.strategy_id,
        requests=len(server.requests) - asked,
        pending=server.pending,
        gaps_s=[b - a for a, b in zip(times, times[1:], strict=False)],
        ledger=rows,
        open_usd=status.reserved_usd,
        settled_usd=sum(r["usd"] for r in totals if r["status"] == "settled"),
        spent_usd=status.spent_usd,
        written=sorted(set(after) - set(before)),
        seconds=seconds,
    )


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_every_llm_fault_ends_with_a_reason_a_settled_ledger_and_nothing_written(
    fake, strategies_home, tmp_path, monkeypatch, fault
):
    for name, value in FAULT_ENV.items():
        monkeypatch.setenv(name, value)
    reports = tmp_path / "reports"
    reports.mkdir()
    monkeypatch.setenv("STRATLAB_REPORTS_DIR", str(reports))

    outcome = run_fault(fake, fault, strategies_home, reports)

    assert outcome.reason == fault.reason
    assert "Traceback" not in (outcome.reason or "") and test_claude.SECRET not in (outcome.reason or "")
    assert (outcome.requests, outcome.pending) == (fault.requests, 0)
    # every reservation ended: settled (answered, or possibly billed) or released (an error answer)
    assert outcome.ledger == {"reserved": 0, "settled": fault.settled, "released": fault.released}
    assert outcome.open_usd == pytest.approx(0, abs=1e-12)
    assert BudgetLedger().status().reservations == []
    assert outcome.spent_usd == pytest.approx(outcome.settled_usd, abs=1e-9)
    if fault.reason is None:  # the one row that recovers: it waited as long as the server asked
        assert outcome.completed and outcome.strategy_id == "claude_ema_spx"
        assert outcome.gaps_s[0] >= RETRY_AFTER_S
        assert "strategies/claude_ema_spx.yaml" in outcome.written
        assert not any(p.startswith("reports/") for p in outcome.written)
    else:
        assert not outcome.completed
        assert outcome.written == []  # no contract, no results folder, no report, no staged file

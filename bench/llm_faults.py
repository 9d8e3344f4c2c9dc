"""The LLM fault matrix as a table: each row of tests/test_llm_faults.py (a timeout, a reset connection,
429, 500, 529, a malformed body, an off-schema tool input, a refusal, max_tokens, an answer without the
save tool) through a whole cycle with Claude designing, against the local Messages API server of
tests/fake_anthropic.py and the real ``anthropic`` SDK.

    .venv/bin/python bench/llm_faults.py

Each row gets a fresh server, ledger, strategies folder and reports folder. Columns: what the server did;
the reason the person sees (``stratlab cycle`` prints it); requests the server received; the ledger's
rows (reservations taken / settled / released, and open ones, which must be 0); files and folders
written under the strategies and reports folders (0, except the row that recovers); seconds. Exits 1
if any row ends otherwise than the matrix expects, and says how.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")  # the table, not each failed task's traceback

from fake_anthropic import FakeAnthropic  # noqa: E402
from test_claude import SECRET  # noqa: E402
from test_llm_faults import FAULT_ENV, FAULTS, RETRY_AFTER_S, Fault, Outcome, run_fault  # noqa: E402


def mismatches(fault: Fault, outcome: Outcome) -> list[str]:
    """How a row ended otherwise than the matrix expects (empty: as expected)."""
    found = []
    if outcome.reason != fault.reason:
        found.append(f"reason {outcome.reason!r}, expected {fault.reason!r}")
    if (outcome.requests, outcome.pending) != (fault.requests, 0):
        found.append(
            f"{outcome.requests} requests ({outcome.pending} replies unused), expected {fault.requests}"
        )
    expected = {"reserved": 0, "settled": fault.settled, "released": fault.released}
    if outcome.ledger != expected or abs(outcome.open_usd) > 1e-12:
        found.append(f"ledger rows {outcome.ledger} (${outcome.open_usd:.6f} open), expected {expected}")
    if abs(outcome.spent_usd - outcome.settled_usd) > 1e-9:
        found.append(f"spent ${outcome.spent_usd:.6f} but settled rows hold ${outcome.settled_usd:.6f}")
    if fault.reason is None:
        if not outcome.completed or not any(p.endswith(".yaml") for p in outcome.written):
            found.append(f"expected a completed cycle and its contract, wrote {outcome.written}")
        if not outcome.gaps_s or outcome.gaps_s[0] < RETRY_AFTER_S:
            found.append(f"retried after {outcome.gaps_s[:1]} s, expected at least {RETRY_AFTER_S} s")
    elif outcome.completed or outcome.written:
        found.append(f"expected a failed cycle that writes nothing, wrote {outcome.written}")
    return found


def row(fault: Fault, outcome: Outcome, ok: bool) -> str:
    if fault.reason is None:
        seen = f"completed: {outcome.strategy_id} (retried after {outcome.gaps_s[0]:.2f} s)"
    else:
        seen = outcome.reason or ""
    rows = outcome.ledger
    ledger = f"{sum(rows.values())}/{rows['settled']}/{rows['released']}, open={rows['reserved']}"
    cells = [fault.name, fault.server, seen.replace("|", "\\|"), str(outcome.requests), ledger]
    cells += [str(len(outcome.written)), f"{outcome.seconds:.1f}", "yes" if ok else "**no**"]
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    from prefect.testing.utilities import prefect_test_harness

    header = (
        "| fault | what the server did | outcome (reason a user sees) | requests sent "
        "| ledger (reserved/settled/released) | files written | seconds | as expected |"
    )
    lines, failures = [header, "|" + "---|" * 8], []
    with tempfile.TemporaryDirectory(prefix="stratlab-llm-faults-") as scratch, prefect_test_harness(120):
        for n, fault in enumerate(FAULTS):
            home = Path(scratch) / f"{n:02d}"
            strategies, reports = home / "strategies", home / "reports"
            strategies.mkdir(parents=True)
            reports.mkdir()
            with FakeAnthropic() as server:
                os.environ.update(
                    FAULT_ENV,
                    ANTHROPIC_BASE_URL=server.url,
                    ANTHROPIC_API_KEY=SECRET,
                    STRATLAB_LEDGER=str(home / "ledger.sqlite3"),
                    STRATLAB_DAILY_BUDGET_USD="5",
                    STRATLAB_STRATEGIES_DIR=str(strategies),
                    STRATLAB_REPORTS_DIR=str(reports),
                )
                outcome = run_fault(server, fault, strategies, reports)
            problems = mismatches(fault, outcome)
            failures += [f"{fault.name}: {p}" for p in problems]
            lines.append(row(fault, outcome, not problems))
    print("\n".join(lines))
    if failures:
        print("\nRows that did not end as expected:\n" + "\n".join(f"- {f}" for f in failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

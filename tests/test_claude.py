"""Claude as designer and assessor, through the real anthropic SDK against a local Messages API server,
and the daily budget that can never be overspent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import STRATEGIES, tree
from fake_anthropic import FakeAnthropic, error, text, tool_use

from flows.research_cycle import CycleParams, research_cycle, result_of
from tasks.llm.budget import BudgetLedger
from tasks.llm.pricing import DEFAULT_MODEL, TokenUsage, model_price, worst_case_usd
from tasks.llm.prompts import DESIGN_MAX_TOKENS, design_brief, design_request
from tasks.storage import latest_run

SECRET = "sk-ant-test-0123456789-secret"
NF_CONTRACT = {
    **yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text()),
    "strategy_id": "claude_mlp",
}
_PILOT = yaml.safe_load((STRATEGIES / "ema_cross_atr.yaml").read_text())
RULE_CONTRACT = {
    **_PILOT,
    "strategy_id": "claude_ema_spx",
    "markets": ["SPX"],
    "timeframes": ["1d"],
    # the operator's cost floor for an index (stratlab.toml [costs.indices]), not the pilot's FX costs
    "risk_model": {**_PILOT["risk_model"], "fees": 0.0005, "slippage": 0.0002},
}
ASSESSMENT = {
    "verdict": "iterate",
    "summary": "Some edge on validation bars, thin against buy-and-hold.",
    "strengths": ["positive validation Sharpe"],
    "weaknesses": ["trails buy-and-hold"],
    "suggestions": ["add a trend filter"],
    "learnings": ["momentum memberships alone barely beat the prior"],
}


@pytest.fixture
def fake(monkeypatch, tmp_path):
    with FakeAnthropic() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
        monkeypatch.setenv("STRATLAB_LEDGER", str(tmp_path / "ledger.sqlite3"))
        monkeypatch.setenv("STRATLAB_DAILY_BUDGET_USD", "5")
        yield server


def run(**params):
    state = research_cycle(CycleParams(**params), return_state=True)
    return state, result_of(state)


def tool_results(request: dict) -> list[dict]:
    """The tool_result blocks of the last user message of a request."""
    last = request["messages"][-1]
    return [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]


pytestmark = pytest.mark.usefixtures("prefect_api")


def claude_cycle_replies(contract: dict) -> list:
    """Claude's side of a whole cycle: list, recent, validate and save ``contract``, then assess it."""
    return [
        tool_use("list_symbols", {}, ("list_indicators", {})),
        tool_use("recent_strategies", {"limit": 5}),
        tool_use("validate_contract", contract),
        tool_use("save_contract", contract),
        tool_use("submit_assessment", ASSESSMENT),
    ]


def whole_claude_cycle(fake):
    """Claude designs (list, recent, validate, save) and assesses one neuro-fuzzy cycle on SPX daily."""
    fake.queue(*claude_cycle_replies(NF_CONTRACT))
    return run(designer="claude", assessor="claude", symbol="SPX", timeframe="1d")


def test_claude_designs_and_assesses_a_whole_cycle(fake, strategies_home):
    state, result = whole_claude_cycle(fake)

    assert state.is_completed(), result.reason
    assert result.strategy_id == "claude_mlp" and result.verdict == "iterate"
    assert len(fake.requests) == 5 and fake.pending == 0
    # the tools ran our code on real data, and the model got the results
    symbols = json.loads(tool_results(fake.requests[1])[0]["content"])
    assert {"symbol": "SPX", "timeframe": "1d"}.items() <= symbols[
        [s["symbol"] for s in symbols].index("SPX")
    ].items()
    assert tool_results(fake.requests[2])[0]["content"] == "no strategies have been tried yet"
    assert tool_results(fake.requests[3])[0]["content"].startswith("valid: claude_mlp")
    # prompts are cached: written once, then read
    assert all(r["system"][-1]["cache_control"] == {"type": "ephemeral"} for r in fake.requests)
    assert fake.usages[0]["cache_creation_input_tokens"] > 0 and fake.usages[1]["cache_read_input_tokens"] > 0
    assert fake.requests[-1]["tool_choice"] == {"type": "tool", "name": "submit_assessment"}

    files = latest_run("claude_mlp", strategies_home)
    assert tree(files) == [
        "assessment.json",
        "backtest.json",
        "contract.yaml",
        "cycle.json",
        "design.json",
        "equity.png",
        "model.ckpt",
        "training.json",
    ]
    assessment = json.loads((files / "assessment.json").read_text())
    assert (
        assessment["assessor"] == f"claude ({DEFAULT_MODEL})"
        and assessment["learnings"] == ASSESSMENT["learnings"]
    )
    assert [c["purpose"] for c in assessment["llm_calls"]] == ["assess"]
    # tokens and dollars per call and per cycle equal what the server reported, priced by the table
    llm = json.loads((files / "cycle.json").read_text())["llm"]
    assert llm["cycle"]["calls"] == 5 and llm["design"]["calls"] == 4
    reported = sum(
        u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
        for u in fake.usages
    )
    seen = (
        llm["cycle"]["input_tokens"] + llm["cycle"]["cache_read_tokens"] + llm["cycle"]["cache_write_tokens"]
    )
    assert seen == reported
    price = model_price(DEFAULT_MODEL)
    expected = (
        sum(
            u["input_tokens"] * price.input
            + u["output_tokens"] * price.output
            + u["cache_creation_input_tokens"] * price.cache_write
            + u["cache_read_input_tokens"] * price.cache_read
            for u in fake.usages
        )
        / 1e6
    )
    assert llm["cycle"]["cost_usd"] == pytest.approx(expected, abs=1e-5)
    assert BudgetLedger().status().spent_usd == pytest.approx(expected, abs=1e-5)
    # the key was sent to the API, and is written nowhere
    assert fake.keys == [SECRET] * 5
    for path in files.rglob("*.json"):
        assert SECRET not in path.read_text()


SCAN_KEY = "sk-ant-scan-7f3c9e1d5b2a4f60-written-nowhere"


def files_under(*roots: Path) -> list[Path]:
    """Every regular file under the roots (each counted once), however deep."""
    found = {p.resolve() for root in roots if root.exists() for p in root.rglob("*") if p.is_file()}
    return sorted(found)


def test_the_api_key_is_written_to_no_file(fake, strategies_home, monkeypatch):
    """A whole Claude cycle, then every byte of every file it could have written: the strategies folder,
    the ledger, the Prefect home, the Prefect database (run logs, task parameters, events) and the
    result storage."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
    )

    from tasks.places import step_results_dir

    monkeypatch.setenv("ANTHROPIC_API_KEY", SCAN_KEY)
    state, result = whole_claude_cycle(fake)
    assert state.is_completed(), result.reason
    assert fake.keys == [SCAN_KEY] * 5  # the key did go to the API
    # run logs and events are sent to the server in batches: let them all land in its database first
    APILogWorker.drain_all(timeout=60, at_exit=False)
    EventsWorker.drain_all(timeout=60, at_exit=False)

    database = Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split(":///", 1)[1])
    ledger = Path(os.environ["STRATLAB_LEDGER"])
    results = step_results_dir()
    scanned = files_under(strategies_home, ledger.parent, PREFECT_HOME.value(), database.parent, results)
    where = (
        f"{len(scanned)} files scanned: {len(files_under(strategies_home))} in the strategies folder, "
        f"{len(files_under(results))} in the result storage, the database {database}, the ledger {ledger}"
    )
    assert database.resolve() in scanned and ledger.resolve() in scanned, where
    assert any(p.name == "cycle.json" for p in files_under(strategies_home)), where
    assert files_under(results), where
    secret = SCAN_KEY.encode()
    holding = []
    for path in scanned:
        try:
            if secret in path.read_bytes():
                holding.append(str(path))
        except FileNotFoundError:  # a temporary file of the database, gone since it was listed
            continue
    assert holding == [], f"the API key is written in {holding} ({where})"


def test_invalid_contract_goes_back_as_an_error_and_is_repaired(fake, strategies_home):
    broken = json.loads(json.dumps(RULE_CONTRACT))
    broken["indicators"][0]["params"]["window"] = 1
    fake.queue(tool_use("save_contract", broken), tool_use("save_contract", RULE_CONTRACT))

    state, result = run(designer="claude", assessor="local", symbol="SPX")

    assert result.strategy_id == "claude_ema_spx", result.reason
    [rejection] = tool_results(fake.requests[1])
    assert rejection["is_error"] is True
    assert rejection["content"].startswith("indicators[0]: params.window: 1 is outside [2, 400]")
    design = json.loads((latest_run("claude_ema_spx", strategies_home) / "design.json").read_text())
    assert design["rejected_contracts"] == 1 and [t["ok"] for t in design["tool_calls"]] == [False, True]


def test_path_traversal_names_are_rejected_before_any_path(fake, strategies_home, tmp_path):
    fake.queue(
        tool_use("save_contract", {**RULE_CONTRACT, "strategy_id": "../../escape"}),
        tool_use("save_contract", {**RULE_CONTRACT, "strategy_id": "/tmp/absolute"}),
        tool_use("save_contract", RULE_CONTRACT),
    )
    state, result = run(designer="claude", assessor="local", symbol="SPX")

    assert result.strategy_id == "claude_ema_spx", result.reason
    for request in fake.requests[1:]:
        [rejection] = tool_results(request)
        assert rejection["is_error"] and rejection["content"].startswith("strategy_id: ")
    assert not (tmp_path / "escape.yaml").exists() and not (tmp_path.parent / "escape.yaml").exists()
    assert all(p.name.startswith("claude_ema_spx") for p in strategies_home.iterdir())


def test_overloaded_then_success_is_retried(fake, strategies_home):
    fake.queue(
        error(529, "overloaded_error", "Overloaded", retry_after_ms="20"),
        tool_use("save_contract", RULE_CONTRACT),
    )

    state, result = run(designer="claude", assessor="local", symbol="SPX")

    assert result.strategy_id == "claude_ema_spx", result.reason
    assert len(fake.requests) == 2
    [call] = result.llm["calls"]
    assert call["attempts"] == 2
    status = BudgetLedger().status()
    assert status.calls == 1 and status.reserved_usd == 0  # the 529's reservation was given back


def test_overloaded_every_time_fails_with_the_reason(fake, strategies_home):
    fake.queue(*[error(529, "overloaded_error", "Overloaded", retry_after_ms="5")] * 4)
    state, result = run(designer="claude", assessor="local", symbol="SPX")

    assert state.is_failed() and result.failed_phase == "designing"
    assert result.reason == "design: Anthropic API overloaded (529) after 4 attempts: Overloaded"
    assert tree(strategies_home) == []
    assert BudgetLedger().status().spent_usd == 0


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            text("I can't help with that.", stop_reason="refusal"),
            "design: Claude declined to write a contract",
        ),
        (
            text("Here is my idea: buy low, sell high."),
            "design: Claude ended its turn without saving a contract",
        ),
        (
            text("...", stop_reason="max_tokens"),
            f"design: the answer reached max_tokens ({DESIGN_MAX_TOKENS})",
        ),
        (
            error(401, "authentication_error", "invalid x-api-key"),
            "design: Anthropic API rejected the request (401)",
        ),
    ],
)
def test_design_failures_end_the_cycle_with_a_reason(fake, strategies_home, reply, reason):
    fake.queue(reply)
    state, result = run(designer="claude", assessor="local")
    assert state.is_failed() and result.reason.startswith(reason)
    assert "Traceback" not in result.reason and SECRET not in result.reason
    assert tree(strategies_home) == []


def test_malformed_assessment_fails_the_cycle(fake, strategies_home, monkeypatch):
    fake.queue(tool_use("submit_assessment", {**ASSESSMENT, "verdict": "buy it"}))
    # the operator lowers the bar so that this contract reaches the assessor
    monkeypatch.setenv("STRATLAB_GATES_BACKTEST_MIN_SHARPE", "-100")
    monkeypatch.setenv("STRATLAB_GATES_BACKTEST_MIN_WIN_RATE", "0")
    contract = strategies_home.parent / "claude_ema_spx.yaml"
    contract.write_text(yaml.safe_dump(RULE_CONTRACT))

    state, result = run(strategy_file=str(contract), assessor="claude")

    assert state.is_failed() and result.failed_phase == "assessing"
    assert result.reason.startswith("assess: malformed submit_assessment input: verdict: Input should be")
    assert tree(strategies_home) == []


def test_budget_exhausted_mid_cycle_never_sends_the_next_request(fake, strategies_home):
    first = design_request([{"role": "user", "content": design_brief("SPX", None)}])
    worst_first = worst_case_usd(
        len(json.dumps(first, default=str)), DESIGN_MAX_TOKENS, model_price(DEFAULT_MODEL)
    )
    ledger = BudgetLedger()
    earlier = ledger.reserve(5 - worst_first - 0.001, "earlier cycles")
    ledger.settle(earlier, 5 - worst_first - 0.001, TokenUsage())
    fake.queue(tool_use("list_symbols"), tool_use("save_contract", RULE_CONTRACT))

    state, result = run(designer="claude", assessor="local", symbol="SPX")

    assert state.is_failed() and result.failed_phase == "designing"
    assert result.reason.startswith("budget_exhausted: design needs up to $")
    assert len(fake.requests) == 1 and fake.pending == 1  # the second request was never sent
    status = BudgetLedger().status()
    assert status.spent_usd <= status.limit_usd and status.reserved_usd == 0
    assert tree(strategies_home) == []


def test_status_and_budget_checks_never_call_the_api(fake, tmp_path):
    env = {**os.environ, "STRATLAB_STRATEGIES_DIR": str(tmp_path), "COLUMNS": "200"}
    for args in (["budget", "--json"], ["budget"], ["strategies", "list", "--json"], ["data", "list"]):
        done = subprocess.run(
            [sys.executable, "-m", "stratlab", *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "stratlab", "budget", "--json"], env=env, capture_output=True, text=True
        ).stdout
    )
    assert status["limit_usd"] == 5.0 and status["remaining_usd"] == 5.0
    assert fake.requests == []

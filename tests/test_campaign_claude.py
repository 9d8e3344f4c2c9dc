"""Claude writes a campaign's brief and critiques it, through the real anthropic SDK against a local
Messages API server and the real campaign flow: what it writes is validated like any contract, it sees
no sealed bar, every call is priced into the campaign's costs and the daily ledger, and the campaign's
own dollar limit stops it with ``budget_exhausted``."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from fake_anthropic import FakeAnthropic, text, tool_use
from synthetic_markets import null_bars, write_market

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

KEY = "sk-ant-test-campaign-0123456789"
BRIEF = "## Thesis\nHourly EURUSD trends persist after a fast SMA crosses a slow one.\n"


def first_contract() -> dict:
    from tasks.campaign.brief import fresh_contract

    contract = fresh_contract("trend_cross", "EURUSD", "1h", 7, 1e-3)
    return {**contract.model_dump(mode="json", exclude_unset=True), "strategy_id": "claude_sma_trend"}


@pytest.fixture
def lab(tmp_path, monkeypatch):
    bars = null_bars(3, n=3000)
    write_market(tmp_path / "data", "EURUSD", "1h", bars)
    monkeypatch.setenv("STRATLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STRATLAB_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("STRATLAB_LEDGER", str(tmp_path / "ledger.sqlite3"))
    monkeypatch.setenv("STRATLAB_DAILY_BUDGET_USD", "5")
    with FakeAnthropic() as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        yield fake, bars, tmp_path


def run(campaign_id: str, **request):
    from flows.campaign import run_campaign
    from tasks.campaign.request import parse_request

    data = {
        "prompt": "Trend following on EURUSD hourly with ATR stops.",
        "designer": "claude",
        "folds": 3,
        "trials_per_iteration": 20,
        "stop": {"max_iterations": 2},
        **request,
    }
    return run_campaign(parse_request(data), campaign_id)


def tool_results(body: dict) -> list[dict]:
    return [
        b for b in body["messages"][-1]["content"] if isinstance(b, dict) and b.get("type") == "tool_result"
    ]


def test_claude_writes_the_brief_and_a_validated_patch_and_every_call_is_priced(lab):
    from tasks.llm.budget import BudgetLedger

    fake, bars, root = lab
    loose = first_contract()
    loose["risk_model"] = {**loose["risk_model"], "fees": 0.0}  # cheaper fills than the operator allows
    fake.queue(
        tool_use("list_markets"),
        tool_use("save_brief", {"brief": BRIEF, "contract": loose}),
        tool_use("save_brief", {"brief": BRIEF, "contract": first_contract()}),
        # after iteration 1: a patch that moves the campaign to another market, then a valid one
        tool_use("propose_patch", {"rationale": "try stocks", "patch": {"markets": ["AAPL"]}}),
        tool_use(
            "propose_patch",
            {
                "rationale": "the fast window's best values sit low in its range: narrow it there",
                "patch": {"optimization_space": {"ma_fast.window": {"min": 4, "max": 16, "value": 8}}},
            },
        ),
    )
    summary = run("claude1")

    folder = root / "reports/campaigns/claude1"
    record = json.loads((folder / "campaign.json").read_text())
    assert summary.state == "completed" and summary.stop_reason == "max_iterations"
    assert fake.pending == 0 and len(fake.requests) == 5  # no critique after the last iteration
    assert ("brief_generated", "claude_brief") in [(t["state"], t["reason"]) for t in record["transitions"]]
    assert BRIEF.strip() in (folder / "brief.md").read_text()

    # the brief saw the development bars only: its market list ends before the seal
    markets = json.loads(tool_results(fake.requests[1])[0]["content"])
    seal = record["seals"][0]["sealed_from"]
    assert (
        markets[0]["to"] < seal and markets[0]["development_bars"] == record["seals"][0]["development_bars"]
    )
    later_days = {f"{t:%Y-%m-%d}" for t in bars.index[bars.index >= seal]} - {seal[:10]}
    assert not any(day in json.dumps(body) for body in fake.requests for day in later_days)

    # invalid inputs went back naming the field, and nothing invalid was run
    assert "risk_model.fees" in tool_results(fake.requests[2])[0]["content"]
    assert "markets" in tool_results(fake.requests[4])[0]["content"]
    assert yaml.safe_load((folder / "contracts/iter_1.yaml").read_text())["risk_model"]["fees"] == 0.0001

    # the critic judged iteration 1's own numbers and its patch is the next contract, with a diff
    evidence = json.loads(
        fake.requests[3]["messages"][0]["content"].split("<evidence>\n")[1].split("\n</evidence>")[0]
    )
    iteration1 = json.loads((folder / "iterations/iter_1.json").read_text())
    assert evidence["iteration"]["top"][0]["score"] == pytest.approx(iteration1["best_score"])
    assert evidence["iteration"]["trials"] == iteration1["trials"] == 20
    patch = json.loads((folder / "patches/iter_1.json").read_text())
    assert (
        patch["critic"] == "claude"
        and patch["changed"] == ["ma_fast.window"]
        and patch["rejected_patches"] == 1
    )
    space = yaml.safe_load((folder / "contracts/iter_2.yaml").read_text())["optimization_space"]
    assert (space["ma_fast.window"]["min"], space["ma_fast.window"]["max"]) == (4, 16)
    assert "+    min: 4" in (folder / "patches/iter_1.diff").read_text()

    # every call is in the campaign's costs and in the daily ledger (both rounded to micro-dollars)
    ledger = BudgetLedger().status()
    assert record["costs"]["llm_calls"] == 5 and record["costs"]["usd"] > 0
    assert record["costs"]["usd"] == pytest.approx(ledger.per_cycle["claude1"], abs=1e-5)
    assert "Claude: 5 calls" in (folder / "report.md").read_text()
    assert KEY not in (folder / "campaign.json").read_text()


def test_the_campaign_dollar_limit_stops_it_with_budget_exhausted(lab):
    fake, _, root = lab
    contract = root / "start.yaml"
    contract.write_text(yaml.safe_dump(first_contract()))
    summary = run("claude2", strategy_file=str(contract), stop={"max_iterations": 5, "max_usd": 0.01})

    record = json.loads((root / "reports/campaigns/claude2/campaign.json").read_text())
    assert summary.state == "completed" and summary.stop_reason == "budget_exhausted"
    assert summary.iterations == 1 and summary.verdict is not None  # the verdict still comes
    assert fake.requests == []  # the critique's worst case did not fit: nothing was sent
    assert "$0.01 limit" in record["stop_detail"]
    assert not (root / "reports/campaigns/claude2/patches/iter_1.json").exists()


def test_a_failed_critique_falls_back_to_the_offline_critic_and_a_failed_brief_fails_the_campaign(lab):
    from tasks.llm.session import LLMFailure

    fake, _, root = lab
    fake.queue(
        tool_use("save_brief", {"brief": BRIEF, "contract": first_contract()}),
        text("I would rather not.", stop_reason="refusal"),
    )
    summary = run("claude3")
    patch = json.loads((root / "reports/campaigns/claude3/patches/iter_1.json").read_text())
    assert summary.state == "completed" and summary.iterations == 2
    assert patch["critic"] == "offline" and patch["claude_error"].startswith(
        "campaign-critic: Claude declined"
    )
    assert patch["actions"]  # the offline rules wrote iteration 2's contract

    fake.queue(text("Here is an idea: buy low, sell high."))
    with pytest.raises(LLMFailure, match="campaign-brief: Claude ended its turn without saving a brief"):
        run("claude4")
    record = json.loads((root / "reports/campaigns/claude4/campaign.json").read_text())
    assert record["state"] == "failed" and record["iterations"] == [] and "LLMFailure" in record["error"]


def test_designer_claude_without_a_key_is_refused_before_anything_runs(lab, monkeypatch):
    from tasks.campaign.request import CampaignInputError

    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(CampaignInputError, match="designer: claude needs ANTHROPIC_API_KEY"):
        run("claude5")
    assert not (lab[2] / "reports/campaigns/claude5").exists()
    assert os.environ.get("ANTHROPIC_API_KEY") is None

"""Metrics, Prometheus and the Grafana dashboard, against real parts: `stratlab up` starts a real Prefect
server, a worker and the metrics exporter; real cycles run (one completed and one gate-failed on the
worker, one cancelled in training, one designed and assessed by Claude through the local Messages API
server), and a campaign, a sweep and an export leave their reports. The exporter's numbers must equal
what Prefect's API and the budget ledger say, and a real Prometheus (Debian's package) must scrape them
and answer every dashboard panel's query."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from conftest import CHROMEDRIVER, CHROMIUM, REPO, SCREENSHOTS, STRATEGIES
from fake_anthropic import FakeAnthropic
from test_claude import NF_CONTRACT, claude_cycle_replies
from test_operate import SLOW, Stack, free_port

pytestmark = pytest.mark.slow

SECRET = "sk-ant-test-observe-0123456789"
DASHBOARD = REPO / "deployments" / "grafana" / "dashboards" / "strategy-lab.json"


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """The exporter's samples: (name, labels) -> value."""
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    """A stack after real work; yields (stack, fake Messages API server)."""
    s = Stack(tmp_path_factory.mktemp("observe"))
    s.strategies.mkdir()
    s.env.update(
        {
            "STRATLAB_LEDGER": str(s.home / "ledger.sqlite3"),
            "STRATLAB_EXPORTS_DIR": str(s.home / "exports"),
            "STRATLAB_DAILY_BUDGET_USD": "5",
        }
    )
    slow = s.home / "slow.yaml"
    slow.write_text(json.dumps(SLOW))
    s.metrics_port = free_port()
    up = s.cli("up", "--port", str(free_port()), "--metrics-port", str(s.metrics_port), "--json", timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr[-3000:]
    s.api = json.loads(up.stdout)["api_url"]
    s.metrics_url = json.loads(up.stdout)["metrics_url"]
    try:
        with FakeAnthropic() as fake:
            for contract, settled in (
                (STRATEGIES / "ema_cross_atr.yaml", "Completed"),
                (STRATEGIES / "bb_rsi_reversion.yaml", "Failed"),  # its backtest gate says no (win rate)
            ):
                run = s.json(
                    "trigger", "--strategy", str(contract), "--designer", "local", "--assessor", "local"
                )
                final = s.wait_final(run["run_id"], timeout=300)
                assert final.state.name == settled, final.state.message
            run = s.json("trigger", "--strategy", str(slow), "--designer", "local", "--assessor", "local")
            s.wait_phase("training")
            assert s.json("cancel")["cancelled"]
            s.wait_final(run["run_id"], settled_as="Cancelled", timeout=300)

            fake.queue(*claude_cycle_replies(NF_CONTRACT))
            claude = {
                **s.env,
                "PREFECT_API_URL": s.api,
                "ANTHROPIC_BASE_URL": fake.url,
                "ANTHROPIC_API_KEY": SECRET,
            }
            done = subprocess.run(
                [sys.executable, "-m", "stratlab", "cycle", "--designer", "claude", "--assessor", "claude"]
                + ["--symbol", "SPX", "--timeframe", "1d", "--json"],
                cwd=REPO,
                env=claude,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
            s.fake_usages = list(fake.usages)

        served = {**s.env, "PREFECT_API_URL": s.api}
        for args in (
            ["sweep", "--strategy", str(STRATEGIES / "ema_cross_atr.yaml"), "--method", "optuna"]
            + ["--max-combos", "40", "--batch", "20"],
            [
                "campaign",
                "run",
                "--prompt",
                "EMA trend following",
                "--strategy",
                str(STRATEGIES / "ema_cross_atr.yaml"),
            ]
            + [
                "--market",
                "EURUSD:1h",
                "--max-iterations",
                "2",
                "--trials",
                "12",
                "--folds",
                "2",
                "--designer",
                "local",
            ],
            ["export", "ema_cross_atr", "--target", "all"],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "stratlab", *args, "--json"],
                cwd=REPO,
                env=served,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, args[0] + ": " + done.stdout[-2000:] + done.stderr[-3000:]
        yield s
    finally:
        started = json.loads((s.home / "stack.json").read_text())
        down = s.cli("down", "--json")
        assert down.returncode == 0, down.stderr[-2000:]
        stopped = set(json.loads(down.stdout)["stopped"])
        assert stopped == {
            name for name in ("server", "worker", "metrics", "prometheus") if started[f"{name}_pid"]
        }
        assert {"server", "worker", "metrics"} <= stopped


def runs_by_state(stack, flow: str) -> dict[str, int]:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with stack.client() as c:
        runs = c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])))
    out: dict[str, int] = {}
    for r in runs:
        out[r.state_type.value.lower()] = out.get(r.state_type.value.lower(), 0) + 1
    return out


def test_the_exporter_counts_what_prefect_and_the_ledger_say(observed):
    samples = scrape(observed.metrics_url)
    cycles = runs_by_state(observed, "research_cycle")
    assert cycles == {"completed": 2, "failed": 1, "cancelled": 1}, cycles
    for outcome in ("completed", "failed", "cancelled", "crashed"):
        assert value(samples, "stratlab_cycles_finished_total", outcome=outcome) == cycles.get(outcome, 0)
    for flow, name in (("campaign", "campaign"), ("sweep", "sweep"), ("export_strategy", "export")):
        for state, n in runs_by_state(observed, flow).items():
            assert value(samples, "stratlab_runs", flow=name, state=state) == n
    # where cycles stopped: the gate in backtesting, the cancel in training
    assert value(samples, "stratlab_cycle_failures_total", phase="backtesting", kind="gate") == 1
    assert value(samples, "stratlab_cycle_failures_total", phase="training", kind="cancelled") == 1
    # every cycle that reached the backtest gate was judged on four criteria; bb_rsi_reversion failed win rate
    assert (
        value(samples, "stratlab_gate_checks_total", gate="backtest", criterion="win_rate", result="failed")
        == 1
    )
    judged = sum(
        value(samples, "stratlab_gate_checks_total", gate="backtest", criterion="trades", result=r)
        for r in ("passed", "failed")
    )
    assert judged == 3  # the pilot, bb_rsi_reversion, Claude's MLP (the cancelled one never got there)
    # the phases of the three cycles that finished their phases: one histogram count per cycle and phase
    assert value(samples, "stratlab_cycle_phase_seconds_count", phase="designing") == 3
    assert value(samples, "stratlab_cycle_phase_seconds_count", phase="assessing") == 2

    # LLM: the ledger's rows, summed, and what the Messages API server reported
    with sqlite3.connect(observed.home / "ledger.sqlite3") as db:
        rows = db.execute(
            "SELECT purpose, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_tokens), "
            "SUM(cache_read_tokens), SUM(cost_usd) FROM ledger WHERE status = 'settled' GROUP BY purpose"
        ).fetchall()
    assert {r[0] for r in rows} == {"design", "assess"}
    for purpose, calls, inp, out, write, read, usd in rows:
        assert value(samples, "stratlab_llm_calls_total", purpose=purpose, status="settled") == calls
        assert value(samples, "stratlab_llm_tokens_total", purpose=purpose, kind="input") == inp
        assert value(samples, "stratlab_llm_tokens_total", purpose=purpose, kind="output") == out
        assert value(samples, "stratlab_llm_tokens_total", purpose=purpose, kind="cache_write") == write
        assert value(samples, "stratlab_llm_tokens_total", purpose=purpose, kind="cache_read") == read
        assert value(samples, "stratlab_llm_cost_usd_total", purpose=purpose) == pytest.approx(usd, rel=1e-9)
    reported = sum(u["output_tokens"] for u in observed.fake_usages)
    assert (
        sum(
            value(samples, "stratlab_llm_tokens_total", purpose=p, kind="output")
            for p in ("design", "assess")
        )
        == reported
    )
    spent = sum(r[6] for r in rows)
    assert value(samples, "stratlab_budget_spent_usd") == pytest.approx(spent, rel=1e-9)
    assert value(samples, "stratlab_budget_remaining_usd") == pytest.approx(5 - spent, rel=1e-9)

    # reports: the campaign, the sweep, the export
    [campaign] = [
        json.loads(p.read_text()) for p in (observed.home / "reports/campaigns").glob("*/campaign.json")
    ]
    assert value(samples, "stratlab_campaign_trials_total") == campaign["trials"]
    assert value(samples, "stratlab_campaign_iterations_total") == len(campaign["iterations"])
    assert value(samples, "stratlab_campaigns", state=campaign["state"]) == 1
    [sweep] = [json.loads(p.read_text()) for p in (observed.home / "reports/sweeps").glob("*/sweep.json")]
    assert value(samples, "stratlab_sweep_combinations_total") == sweep["evaluated"]
    assert value(samples, "stratlab_sweep_bar_combinations_total") == sweep["evaluated"] * sweep["bars"]
    exports = [
        *(observed.home / "exports").glob("*/export.json"),
        *(observed.home / "reports/campaigns").glob("*/exports/export.json"),
    ]
    assert len(exports) >= 1  # the export command's; a campaign that promotes adds its own
    for target in ("pine", "ctrader"):
        assert value(samples, "stratlab_exports_total", target=target, outcome="written") == len(exports)
        assert value(samples, "stratlab_export_parity_total", target=target, status="unchecked") == len(
            exports
        )
    assert all(value(samples, "stratlab_source_up", source=s) == 1 for s in ("prefect", "ledger", "reports"))
    # small label sets: no run, strategy or campaign id anywhere
    ids = {observed.api, campaign["campaign_id"], "ema_cross_atr", "claude_mlp"}
    assert not any(v in ids or re.fullmatch(r"[0-9a-f-]{36}", v) for _, labels in samples for _, v in labels)


def test_a_restarted_exporter_gives_the_same_numbers(observed):
    served = {k: v for k, v in scrape(observed.metrics_url).items() if not k[0].startswith("stratlab_source")}
    done = subprocess.run(
        [sys.executable, "-m", "stratlab", "metrics"],
        cwd=REPO,
        env={**observed.env, "PREFECT_API_URL": observed.api},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = {}
    for line in done.stdout.splitlines():
        if line and not line.startswith("#") and not line.startswith("stratlab_source"):
            name_labels, number = line.rsplit(" ", 1)
            fresh[name_labels] = float(number)
    assert len(fresh) == len(served) > 50
    assert fresh == {_text(name, labels): v for (name, labels), v in served.items()}


def _text(name: str, labels: frozenset) -> str:
    """A sample's name and labels as the exposition format writes them (labels sorted by name)."""
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels)) + "}"


@pytest.fixture(scope="module")
def prometheus(observed):
    """`stratlab up --prometheus` on the running stack: Debian's prometheus scraping the exporter."""
    if not shutil.which("prometheus"):
        pytest.skip("needs Debian's prometheus (scripts/test.sh installs it when run as root)")
    port = free_port()
    up = observed.cli(
        "up",
        "--metrics-port",
        str(observed.metrics_port),
        "--prometheus",
        "--prometheus-port",
        str(port),
        "--json",
    )
    assert up.returncode == 0, up.stdout + up.stderr[-3000:]
    url = json.loads(up.stdout)["prometheus_url"]
    deadline = time.monotonic() + 120
    while not query(url, "stratlab_cycles_finished_total"):  # the first scrapes have landed
        assert time.monotonic() < deadline, "Prometheus never stored the exporter's metrics"
        time.sleep(1)
    time.sleep(12)  # a few more scrapes (every 5 s), so that rates over time have points
    return url


def query(url: str, expr: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?query={urllib.parse.quote(expr)}", timeout=30) as r:
        answer = json.loads(r.read())
    assert answer["status"] == "success", answer
    assert answer["data"]["resultType"] == "vector", answer
    return answer["data"]["result"]


def test_prometheus_stores_the_metrics(prometheus, observed):
    [up] = query(prometheus, 'up{job="stratlab"}')
    assert up["value"][1] == "1"
    stored = {
        r["metric"]["outcome"]: float(r["value"][1])
        for r in query(prometheus, "stratlab_cycles_finished_total")
    }
    assert stored == {"completed": 2.0, "failed": 1.0, "cancelled": 1.0, "crashed": 0.0}


def test_every_dashboard_panel_returns_data_of_its_shape(prometheus):
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len(panels) >= 12 and all(p["datasource"]["uid"] == "stratlab-prometheus" for p in panels)
    for panel in panels:
        for target in panel["targets"]:
            series = query(prometheus, target["expr"])
            assert series, f"{panel['title']}: {target['expr']} returned no data"
            wanted = set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]))
            for s in series:
                assert wanted <= set(s["metric"]), f"{panel['title']}: {s['metric']} lacks {wanted}"
                number = float(s["value"][1])
                assert number == number, f"{panel['title']}: {target['expr']} is NaN for {s['metric']}"


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_prometheus_graphs_a_metric_in_its_expression_browser(prometheus, browser):
    """The expression browser draws the cycles by outcome; the screenshot is the README's picture."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expr = urllib.parse.quote("stratlab_cycles_finished_total")
    browser.set_window_size(1400, 1050)  # the graph and its legend
    browser.get(f"{prometheus}/graph?g0.expr={expr}&g0.tab=0&g0.range_input=1m")
    legend = WebDriverWait(browser, 60).until(
        lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, ".legend .label")] or False
    )
    assert any('outcome="completed"' in item for item in legend), legend
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "prometheus-cycles.png"))

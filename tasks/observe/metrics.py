"""Strategy Lab's Prometheus metrics, computed on every scrape from what persists.

Nothing is counted in this process: a scrape reads Prefect's API (every run of our flows, with the
``stratlab.*`` labels a cycle writes on its run: ``flows/progress.py``), the budget ledger, and the
reports folders (campaigns, sweeps, exports). A restarted exporter therefore gives the same numbers, and
several exporters agree. Totals that can only grow are counters; states, today's budget and the latest
campaign are gauges. Labels stay few (flow, outcome, phase, gate, criterion, purpose, kind, target,
state, reason): never a run id, a strategy id or a campaign id.

A source that cannot be read (the API down, a ledger locked) does not fail the scrape: its metrics are
left out and ``stratlab_source_up{source}`` says 0, so a dashboard shows the gap instead of zeros.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

FLOWS = {  # Prefect flow name -> the `flow` label
    "research_cycle": "cycle",
    "campaign": "campaign",
    "sweep": "sweep",
    "export_strategy": "export",
}
FINAL = ("completed", "failed", "cancelled", "crashed")
STATES = (*FINAL, "running", "pending", "scheduled", "paused", "cancelling")  # each flow gets them all
# LLM purposes as the ledger records them, always present (0 until used)
PURPOSES = ("design", "assess", "campaign-brief", "campaign-critic")
TOKEN_KINDS = ("input", "output", "cache_write", "cache_read")
PHASE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
RUN_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
PAGE = 200  # flow runs per API request (the server's default limit)


class StratLabCollector(Collector):
    """A ``prometheus_client`` collector: register it on a registry and every scrape calls
    :meth:`collect`. ``api_url`` None means the Prefect API this process is configured with."""

    def __init__(
        self,
        api_url: str | None = None,
        reports: Path | None = None,
        exports: Path | None = None,
        ledger: Path | None = None,
    ):
        self.api_url = api_url
        self.reports = reports
        self.exports = exports
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "stratlab_source_up", "1 when the source could be read in this scrape.", labels=["source"]
        )
        took = GaugeMetricFamily(
            "stratlab_source_seconds", "Seconds this scrape spent reading the source.", labels=["source"]
        )
        for source, read in (
            ("prefect", self._prefect),
            ("ledger", self._ledger),
            ("reports", self._reports),
        ):
            started = time.perf_counter()
            try:
                metrics = list(read())
            except Exception:  # noqa: BLE001 - a source down must not take the others with it
                metrics, ok = [], 0.0
            else:
                ok = 1.0
            up.add_metric([source], ok)
            took.add_metric([source], time.perf_counter() - started)
            yield from metrics
        yield up
        yield took

    # --- Prefect: runs of our flows and the labels cycles write -------------------------------------

    def _runs(self) -> list[dict]:
        """Every run of our flows as {flow, state, seconds, labels}: one request per page of runs."""
        from prefect import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.client.schemas.sorting import FlowRunSort
        from prefect.settings import PREFECT_API_URL, temporary_settings

        updates = {PREFECT_API_URL: self.api_url} if self.api_url else {}
        runs: list[dict] = []
        with temporary_settings(updates=updates), get_client(sync_client=True) as client:
            only_ours = FlowFilter(name=FlowFilterName(any_=list(FLOWS)))
            flows = {f.id: FLOWS[f.name] for f in client.read_flows(flow_filter=only_ours)}
            offset = 0
            while True:
                page = client.read_flow_runs(
                    flow_filter=only_ours, sort=FlowRunSort.ID_DESC, limit=PAGE, offset=offset
                )
                runs += [
                    {
                        "flow": flows.get(r.flow_id, "other"),
                        "state": r.state_type.value.lower() if r.state_type else "unknown",
                        "seconds": r.total_run_time.total_seconds(),
                        "labels": {k: v for k, v in (r.labels or {}).items() if k.startswith("stratlab.")},
                    }
                    for r in page
                ]
                if len(page) < PAGE:
                    return runs
                offset += PAGE

    def _prefect(self) -> Iterator[Metric]:
        runs = self._runs()
        states = GaugeMetricFamily(
            "stratlab_runs",
            "Runs of each flow known to Prefect, by state (running ones included).",
            labels=["flow", "state"],
        )
        counts = Counter((r["flow"], r["state"]) for r in runs)
        for flow, state in sorted({*((f, s) for f in FLOWS.values() for s in STATES), *counts}):
            states.add_metric([flow, state], counts[(flow, state)])
        yield states

        cycles = [r for r in runs if r["flow"] == "cycle"]
        finished = CounterMetricFamily(
            "stratlab_cycles_finished", "Research cycles that ended, by outcome.", labels=["outcome"]
        )
        outcomes = Counter(r["state"] for r in cycles if r["state"] in FINAL)
        for outcome in FINAL:
            finished.add_metric([outcome], outcomes[outcome])
        yield finished

        failures = CounterMetricFamily(
            "stratlab_cycle_failures",
            "Cycles that did not complete, by the phase they stopped in and how: gate (a gate said no), "
            "error, cancelled or crashed.",
            labels=["phase", "kind"],
        )
        for (phase, kind), n in sorted(
            Counter(_failure(r) for r in cycles if r["state"] in FINAL[1:]).items()
        ):
            failures.add_metric([phase, kind], n)
        yield failures

        gates = CounterMetricFamily(
            "stratlab_gate_checks",
            "Gate criteria judged in cycles, by gate, criterion and result.",
            labels=["gate", "criterion", "result"],
        )
        checks: Counter = Counter()
        for r in cycles:
            for key, value in r["labels"].items():
                if key.startswith("stratlab.gate."):
                    gate, _, criterion = key.removeprefix("stratlab.gate.").partition(".")
                    checks[(gate, criterion, "passed" if _true(value) else "failed")] += 1
        for key, n in sorted(checks.items()):
            gates.add_metric(list(key), n)
        yield gates

        phases = HistogramMetricFamily(
            "stratlab_cycle_phase_seconds", "Seconds each phase of a cycle took.", labels=["phase"]
        )
        per_phase: dict[str, list[float]] = defaultdict(list)
        for r in cycles:
            for key, value in r["labels"].items():
                if key.startswith("stratlab.seconds."):
                    per_phase[key.removeprefix("stratlab.seconds.")].append(float(value))
        for phase, values in sorted(per_phase.items()):
            phases.add_metric([phase], *_histogram(values, PHASE_BUCKETS))
        yield phases

        durations = HistogramMetricFamily(
            "stratlab_run_seconds", "Run time of finished runs, by flow.", labels=["flow"]
        )
        per_flow: dict[str, list[float]] = defaultdict(list)
        for r in runs:
            if r["state"] in FINAL:
                per_flow[r["flow"]].append(r["seconds"])
        for flow, values in sorted(per_flow.items()):
            durations.add_metric([flow], *_histogram(values, RUN_BUCKETS))
        yield durations

    # --- the budget ledger ----------------------------------------------------------------------------

    def _ledger(self) -> Iterator[Metric]:
        from tasks.llm.budget import LEDGER_URL_ENV, BudgetLedger, ledger_path

        path = self.ledger or ledger_path()
        if self.ledger is None and os.environ.get(LEDGER_URL_ENV, "").strip():
            ledger = BudgetLedger()  # a database server's ledger (PostgreSQL)
            rows, status = ledger.totals(), ledger.status()
        elif not path.exists():  # no call was ever made: nothing to create, nothing to count
            rows, status = [], None
        else:
            ledger = BudgetLedger(path)
            rows, status = ledger.totals(), ledger.status()
        calls = CounterMetricFamily(
            "stratlab_llm_calls",
            "LLM requests by purpose and ledger status (settled, released, reserved).",
            labels=["purpose", "status"],
        )
        tokens = CounterMetricFamily(
            "stratlab_llm_tokens",
            "Tokens billed, by purpose and kind (input, output, cache_write, cache_read).",
            labels=["purpose", "kind"],
        )
        dollars = CounterMetricFamily(
            "stratlab_llm_cost_usd",
            "Dollars of LLM requests by purpose: settled costs, open reservations at their worst case.",
            labels=["purpose"],
        )
        per_kind: Counter = Counter({(p, k): 0 for p in PURPOSES for k in TOKEN_KINDS})
        per_purpose: Counter = Counter({p: 0.0 for p in PURPOSES})
        for row in rows:
            calls.add_metric([row["purpose"], row["status"]], row["calls"])
            for kind in TOKEN_KINDS:
                per_kind[(row["purpose"], kind)] += row[kind]
            per_purpose[row["purpose"]] += row["usd"]
        for key, n in sorted(per_kind.items()):
            tokens.add_metric(list(key), n)
        for purpose, usd in sorted(per_purpose.items()):
            dollars.add_metric([purpose], usd)
        yield from (calls, tokens, dollars)
        if status is None:
            from tasks.llm.budget import daily_limit

            limit, spent, reserved = daily_limit(), 0.0, 0.0
        else:
            limit, spent, reserved = status.limit_usd, status.spent_usd, status.reserved_usd
        for name, value, text in (
            ("limit", limit, "Today's LLM budget (UTC day)."),
            ("spent", spent, "Dollars settled today."),
            ("reserved", reserved, "Dollars reserved today by requests not settled yet (worst case)."),
            ("remaining", max(limit - spent - reserved, 0.0), "Dollars left today."),
        ):
            yield GaugeMetricFamily(f"stratlab_budget_{name}_usd", text, value=value)

    # --- reports: campaigns, sweeps, exports ------------------------------------------------------

    def _reports(self) -> Iterator[Metric]:
        from tasks.places import reports_dir

        reports = self.reports or reports_dir()
        yield from _campaigns(_read_all(reports / "campaigns", "*/campaign.json"))
        yield from _sweeps(_read_all(reports / "sweeps", "*/sweep.json"))
        exports = self.exports or _default_exports()
        yield from _exports(
            [*_read_all(exports, "*/export.json"), *_read_all(reports / "campaigns", "*/exports/export.json")]
        )


def _failure(run: dict) -> tuple[str, str]:
    labels = run["labels"]
    if run["state"] == "failed":
        return labels.get("stratlab.failed_phase", labels.get("stratlab.phase", "none")), labels.get(
            "stratlab.failure", "error"
        )
    return labels.get("stratlab.phase", "none"), run["state"]  # cancelled or crashed: where it was


def _true(value) -> bool:
    return value is True or str(value).lower() == "true"


def _histogram(values: list[float], bounds: tuple[float, ...]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative buckets (with +Inf) and the sum, as HistogramMetricFamily.add_metric takes them."""
    buckets = [(repr(b), float(sum(v <= b for v in values))) for b in bounds]
    return [*buckets, ("+Inf", float(len(values)))], float(sum(values))


def _read_all(folder: Path, pattern: str) -> list[dict]:
    """Every JSON file matching ``pattern`` under ``folder``; one being rewritten is skipped this time
    (files are written atomically, so this is only a file that vanished between listing and reading)."""
    out = []
    for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return out


def _default_exports() -> Path:
    from tasks.places import exports_dir

    return exports_dir()


def _campaigns(records: list[dict]) -> Iterator[Metric]:
    from tasks.campaign.record import STATES

    states = GaugeMetricFamily("stratlab_campaigns", "Campaigns by state.", labels=["state"])
    counts = Counter(r.get("state") for r in records)
    for state in STATES:
        states.add_metric([state], counts[state])
    yield states
    yield CounterMetricFamily(
        "stratlab_campaign_iterations",
        "Iterations finished by all campaigns.",
        value=sum(len(r.get("iterations") or []) for r in records),
    )
    yield CounterMetricFamily(
        "stratlab_campaign_trials",
        "Trials run by all campaigns (every one counted).",
        value=sum(int(r.get("trials") or 0) for r in records),
    )
    stops = CounterMetricFamily("stratlab_campaign_stops", "Campaigns stopped, by reason.", labels=["reason"])
    for reason, n in sorted(Counter(r["stop_reason"] for r in records if r.get("stop_reason")).items()):
        stops.add_metric([reason], n)
    yield stops
    verdicts = CounterMetricFamily("stratlab_campaign_verdicts", "Campaign verdicts.", labels=["verdict"])
    for verdict, n in sorted(Counter(r["verdict"] for r in records if r.get("verdict")).items()):
        verdicts.add_metric([verdict], n)
    yield verdicts
    latest = max(records, key=_last_change, default=None)
    if latest is not None:  # the one that changed last: a dashboard draws its score trajectory over time
        scores = [
            it["best_score"] for it in latest.get("iterations") or [] if it.get("best_score") is not None
        ]
        yield GaugeMetricFamily(
            "stratlab_campaign_latest_iterations",
            "Iterations finished by the latest campaign.",
            value=len(latest.get("iterations") or []),
        )
        yield GaugeMetricFamily(
            "stratlab_campaign_latest_trials",
            "Trials run by the latest campaign.",
            value=int(latest.get("trials") or 0),
        )
        if scores:
            yield GaugeMetricFamily(
                "stratlab_campaign_latest_best_score",
                "Best score so far of the latest campaign.",
                value=max(scores),
            )


def _last_change(record: dict) -> str:
    transitions = record.get("transitions") or []
    return transitions[-1]["at"] if transitions else ""


def _sweeps(summaries: list[dict]) -> Iterator[Metric]:
    yield CounterMetricFamily("stratlab_sweeps", "Sweeps with a report.", value=len(summaries))
    yield CounterMetricFamily(
        "stratlab_sweep_combinations",
        "Combinations evaluated by all sweeps (every trial counted).",
        value=sum(int(s.get("evaluated") or 0) for s in summaries),
    )
    yield CounterMetricFamily(
        "stratlab_sweep_bar_combinations",
        "Bars x combinations simulated by all sweeps.",
        value=sum(int(s.get("evaluated") or 0) * int(s.get("bars") or 0) for s in summaries),
    )
    yield CounterMetricFamily(
        "stratlab_sweep_seconds",
        "Seconds all sweeps took (their flows, end to end).",
        value=sum(float(s.get("seconds") or 0.0) for s in summaries),
    )


def _exports(summaries: list[dict]) -> Iterator[Metric]:
    files = CounterMetricFamily(
        "stratlab_exports", "Export targets written or refused, by target.", labels=["target", "outcome"]
    )
    parity = CounterMetricFamily(
        "stratlab_export_parity",
        "Exports by parity with the engine: identical (every trade), passed (>= 99%), failed, unchecked.",
        labels=["target", "status"],
    )
    written: Counter = Counter()
    checked: Counter = Counter()
    for summary in summaries:
        for target, entry in (summary.get("targets") or {}).items():
            written[(target, "written" if entry.get("file") else "refused")] += 1
            if entry.get("file"):
                checked[(target, _parity_status(entry.get("parity")))] += 1
    for key, n in sorted(written.items()):
        files.add_metric(list(key), n)
    for key, n in sorted(checked.items()):
        parity.add_metric(list(key), n)
    yield from (files, parity)


def _parity_status(parity: dict | None) -> str:
    if not parity:
        return "unchecked"
    engine, same = parity.get("engine_trades", 0), parity.get("identical", 0)
    if same == engine == parity.get("target_trades", engine):
        return "identical"
    return "passed" if engine and same / engine >= 0.99 else "failed"

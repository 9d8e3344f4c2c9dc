"""The `campaign` flow: seed 003's loop, brief -> (run -> evaluate -> critique)* -> holdout -> verdict.

The flow orders the steps and keeps the record; the work is in ``tasks/campaign/``. Every state change is
persisted in ``campaign.json`` with its time and reason and shown as the run's state message. Each
market of an iteration is a Prefect task cached by content (contract, development bars, request), and a
finished iteration is its files, so a campaign run again after a crash, a cancel or a pause (Prefect
re-runs a resumed flow from the top) reads back what it had finished and goes on with the next
iteration. The holdout is opened once, at the end, for the one chosen candidate.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from datetime import UTC, datetime

import pandas as pd
from prefect import flow, get_client
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.exceptions import Abort, Pause, TerminationSignal
from prefect.runtime import flow_run
from prefect.states import Running
from pydantic import BaseModel

from deployments.suspension import note_suspension
from flows.guard import CAMPAIGN_LIMIT, hold_slot, one_cycle_at_a_time
from strategy_contract import Strategy, load_strategy
from strategy_contract.io import atomic_write_bytes, atomic_write_json, strategy_to_yaml, strict_json
from tasks.backtest import bars_per_year, column_metrics
from tasks.campaign.brief import BRIEF_FAMILIES, compile_brief, fresh_contract
from tasks.campaign.critic import critique_offline
from tasks.campaign.decide import overfitting, since_improvement, stop_reason, verdict
from tasks.campaign.exports import export_candidate
from tasks.campaign.holdout import DevelopmentMarket, open_holdout, seal_market
from tasks.campaign.iteration import MarketResult, contract_on, run_market
from tasks.campaign.record import CampaignRecord
from tasks.campaign.report import (
    all_trials,
    campaign_dir,
    finished_iterations,
    leaderboard,
    market_key,
    market_returns,
    trajectory_png,
    write_iteration,
    write_text,
)
from tasks.campaign.request import CampaignInputError, CampaignRequest, check_markets
from tasks.campaign.walkforward import purge_bars, walk_forward_folds
from tasks.data import median_abs_return
from tasks.design import family_of
from tasks.edge import cached_step, uncached_step
from tasks.features import feature_frame
from tasks.llm.budget import BudgetExhausted, BudgetLedger
from tasks.llm.campaign import MarketView, brief_with_claude, critic_evidence, critique_with_claude
from tasks.llm.session import ClaudeSession, LLMFailure, resolve_who
from tasks.observe.pictures import FOLDS_PNG, folds_png
from tasks.observe.traces import configure_tracing
from tasks.provenance import provenance
from tasks.splits import SplitBounds
from tasks.sweep.evaluate import simulate_chunk
from tasks.sweep.report import data_uri
from tasks.train import train_model

configure_tracing()  # before any run: Prefect's spans need this process's tracer provider

campaign_market = cached_step(run_market, "campaign-market")
campaign_export = uncached_step(export_candidate, "campaign-export")  # reads the data folder, writes files
progress_log = logging.getLogger("stratlab.campaign")  # the CLI prints it; the run logs the state


class CampaignSummary(BaseModel):
    """What the flow returns and `stratlab campaign run --json` prints."""

    campaign_id: str
    state: str
    stop_reason: str | None
    verdict: str | None
    iterations: int
    trials: int
    best: dict | None
    report_dir: str


def new_campaign_id() -> str:
    """A campaign's id from its flow run (the same when the run is resumed or run again), else random."""
    run_id = flow_run.get_id()
    if not run_id:
        return f"c{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:8]}"
    started = flow_run.get_scheduled_start_time() or datetime.now(UTC)
    return f"c{started:%Y%m%d}-{str(run_id).replace('-', '')[:8]}"


@flow(name="campaign", log_prints=False)
def campaign(request: CampaignRequest, campaign_id: str | None = None) -> CampaignSummary:
    """Run (or continue) a campaign; ``campaign_id`` continues the one of that id."""
    check_markets(request)
    if resolve_who(request.designer) == "claude" and not os.environ.get("ANTHROPIC_API_KEY"):
        raise CampaignInputError("designer: claude needs ANTHROPIC_API_KEY in this process's environment")
    campaign_id = campaign_id or new_campaign_id()
    folder = campaign_dir(campaign_id)
    runner = _Campaign(request, campaign_id, folder)
    try:
        with hold_slot(CAMPAIGN_LIMIT):
            return runner.run()
    except Pause:  # suspended (the UI's Pause, `stratlab campaign pause`): this process ends here
        runner.pause("suspended")
        if flow_run.get_id():
            note_suspension(str(flow_run.get_id()))  # so that the crash detection does not take it for one
        raise
    except KeyboardInterrupt:  # Ctrl-C of an in-process campaign: `campaign run --resume ID` goes on
        runner.pause("interrupted")
        raise
    except TerminationSignal:  # cancelled: the record says where it stopped; a re-run continues
        runner.pause("cancelled")
        raise
    except Abort:  # the API refuses to let this run go on, e.g. its suspension expired while a task ran
        runner.pause("aborted")
        raise
    except Exception as exc:
        runner.fail(exc)
        raise


class _Campaign:
    def __init__(self, request: CampaignRequest, campaign_id: str, folder):
        self.request, self.folder = request, folder
        if (folder / "campaign.json").is_file():
            self.record = CampaignRecord.load(folder)
            if self.record.request != request.model_dump(mode="json"):
                raise CampaignInputError(f"campaign {campaign_id}: continued with a different request")
        else:
            self.record = CampaignRecord(campaign_id=campaign_id, request=request.model_dump(mode="json"))
        self.record.flow_run_id = str(flow_run.get_id() or "") or None
        self.progress_id = None  # the run's progress artifact: iterations done of max_iterations
        self.designer = resolve_who(request.designer)  # "auto": Claude when this process has a key
        seals = {(s["symbol"], s["timeframe"]): s["sealed_from"] for s in self.record.seals}
        self.markets = [
            seal_market(symbol, tf, request.holdout_fraction, seals.get((symbol, tf)))
            for symbol, tf in request.market_pairs
        ]
        self.record.seals = [m.seal.as_dict() for m in self.markets]
        self.record.provenance = {
            **provenance(request.seed, "", "market data"),
            "development_data": {market_key(m.symbol, m.timeframe): m.sha256 for m in self.markets},
        }

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> CampaignSummary:
        record = self.record
        if record.state in ("completed", "failed"):
            return self.summary()
        for stray in self.folder.rglob(".*.tmp"):  # a killed writer's; this process holds the campaign slot
            stray.unlink(missing_ok=True)
        if record.state == "paused":
            self.move(record.resumed_state(), "resumed", len(record.iterations))
        if record.state in ("queued", "brief_generated"):
            self.brief()
        done = finished_iterations(self.folder)
        record.iterations = done
        record.trials = sum(it["trials"] for it in done)
        started = max((t.iteration for t in record.transitions if t.reason == "iteration_started"), default=0)
        if record.state == "campaign_running" and 0 < started <= len(done):  # stopped after its files
            self.move("campaign_evaluated", "iteration_read_back", started)
        reason = self.stop_reason() if record.state == "campaign_evaluated" else None
        while reason is None:
            n = len(record.iterations) + 1
            try:
                contract = self.contract_of(n)
            except BudgetExhausted as exc:  # a critique lost with a crash, redone: no money left for it
                reason = self.out_of_budget(exc)
                break
            if record.state == "campaign_evaluated":  # resumed between an evaluation and its critique
                self.move("refinement_planned", "critique_written", n - 1)
            self.move("campaign_running", "iteration_started", n)
            with one_cycle_at_a_time():  # the research slot: a cycle waits at most one iteration
                self.iterate(n, contract)
            self.move("campaign_evaluated", "iteration_evaluated", n)
            reason = self.stop_reason()
            if reason is None:
                try:
                    self.critique(n, contract)
                except BudgetExhausted as exc:
                    reason = self.out_of_budget(exc)
                    break
                self.move("refinement_planned", "critique_written", n)
        record.stop_reason = reason
        self.conclude()
        self.move("completed", reason, len(record.iterations))
        self.show_progress(100.0)
        return self.summary()

    @property
    def gates(self):
        return self.request.gates

    def stop_reason(self) -> str | None:
        """The stop criterion that holds now. The clock counts the time spent in iterations (a pause,
        or the time between a crash and its re-run, does not count)."""
        hours = sum(sum(it.get("seconds", {}).values()) for it in self.record.iterations) / 3600
        usd = self.record.costs["usd"]
        return stop_reason(self.record.iterations, self.request.stop, hours, usd, self.gates.max_drawdown)

    def brief(self) -> None:
        first = self.markets[0]
        if self.request.strategy_file:
            contract = load_strategy(self.request.strategy_file)
            text = f"# Brief\n\nStarting from `{self.request.strategy_file}` ({contract.strategy_id}).\n"
            family, how = "given", "strategy_file"
        elif self.designer == "claude":
            session = self.claude_session()
            try:
                written = brief_with_claude(session, self.request.prompt, self.market_views())
            finally:
                self.spend(session, "brief")
            contract, family, how = written.strategy, family_of(written.strategy), "claude_brief"
            text = f"# Brief (Claude, {self.request.model})\n\n{written.markdown}\n"
            atomic_write_json(
                self.folder / "brief.json",
                {
                    "writer": "claude",
                    "model": self.request.model,
                    "calls": [c.model_dump() for c in written.calls],
                    "tool_calls": [t.model_dump() for t in written.tool_calls],
                    "rejected_contracts": written.rejected_contracts,
                },
            )
        else:
            volatility = median_abs_return(first.bars, len(first.bars)) or 1e-3
            brief = compile_brief(
                self.request.prompt, self.request.market_pairs, self.request.seed, volatility
            )
            contract, text, family, how = (
                brief.contract,
                brief.markdown,
                brief.family,
                "offline_spec_compiler",
            )
        write_text(self.folder, "brief.md", text)
        self.record.family = family
        self.move("brief_generated", how, 0)
        write_text(self.folder, "contracts/iter_1.yaml", strategy_to_yaml(contract))
        self.move("code_generated", "contract_validated", 0)

    def market_views(self) -> list[MarketView]:
        """The campaign's markets as Claude may see them: development bars only."""
        return [
            MarketView(
                symbol=m.symbol,
                timeframe=m.timeframe,
                development_bars=len(m.bars),
                start=str(m.bars.index[0]),
                end=str(m.bars.index[-1]),
                sealed_from=m.seal.sealed_from,
                typical_move=median_abs_return(m.bars, len(m.bars)) or 0.0,
            )
            for m in self.markets
        ]

    def claude_session(self) -> ClaudeSession:
        """A session for one brief or critique, capped by what the campaign's ``max_usd`` has left."""
        cap = self.request.stop.max_usd
        left = None if cap is None else max(cap - self.record.costs["usd"], 0.0)
        return ClaudeSession(
            self.request.model, BudgetLedger(), cycle_id=self.record.campaign_id, limit_usd=left
        )

    def spend(self, session: ClaudeSession, step: str) -> None:
        """Add a session's dollars, calls and tokens to the campaign's costs (persisted at once)."""
        costs = self.record.costs
        costs["usd"] = round(costs["usd"] + session.charged_usd, 6)
        costs["llm_calls"] = costs.get("llm_calls", 0) + len(session.calls)
        for key in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"):
            costs[key] = costs.get(key, 0) + sum(getattr(c, key) for c in session.calls)
        by_step = costs.setdefault("by_step", {})
        by_step[step] = round(by_step.get(step, 0.0) + session.charged_usd, 6)
        self.record.save(self.folder)

    def out_of_budget(self, exc: BudgetExhausted) -> str:
        self.record.stop_detail = str(exc)
        return "budget_exhausted"

    def contract_of(self, n: int) -> Strategy:
        path = self.folder / "contracts" / f"iter_{n}.yaml"
        if not path.is_file():  # the critique after n - 1 was lost with a crash: it is deterministic
            before = self.contract_of(n - 1)
            self.critique(n - 1, before)
        return load_strategy(path)

    def iterate(self, n: int, contract: Strategy) -> None:
        seed = self.request.seed + n
        began = time.monotonic()
        results: list[MarketResult] = []
        failed = None
        for market in self.markets:
            try:
                results.append(campaign_market(contract, market, self.request, seed))
            except (ValueError, RuntimeError) as exc:  # a contract that cannot run here: a failed iteration
                failed = f"{market.symbol} {market.timeframe}: {exc}"
                break
        tables, returns = [], {}
        for result in results:
            key = market_key(result.symbol, result.timeframe)
            table = result.table.copy()
            table.insert(0, "market", f"{result.symbol}:{result.timeframe}")
            table.insert(1, "strategy_id", result.strategy.strategy_id)
            tables.append(table)
            returns[key] = result.returns
        table = pd.concat(tables, ignore_index=True) if tables and not failed else pd.DataFrame()
        trials = sum(r.trials for r in results) if not failed else 0
        summary = {
            "iteration": n,
            "strategy_id": contract.strategy_id,
            "family": self.record.family,
            "trials": trials,
            "failed": failed,
            "best": None,
            "best_score": None,
            "overfitting": None,
            "trained": {market_key(r.symbol, r.timeframe): r.trained for r in results},
        }
        if not failed and table["score"].notna().any():
            row = table.loc[table["score"].idxmax()].to_dict()
            summary["best"] = strict_json(row)
            summary["best_score"] = float(row["score"])
        write_iteration(self.folder, n, None, table, returns if not failed else {})
        swept = time.monotonic()
        if summary["best"] is not None:
            summary["overfitting"] = self.luck(summary["best"], n, self.record.trials + trials)
        summary["seconds"] = {
            "sweep": round(swept - began, 3),
            "evaluate": round(time.monotonic() - swept, 3),
        }
        write_iteration(self.folder, n, summary, table, {})
        self.record.iterations.append(summary)
        self.record.trials += trials
        self.record.save(self.folder)
        self.publish(n)

    def luck(self, best: dict, iterations: int, total: int) -> dict:
        """DSR and PBO of ``best`` over the trials of the first ``iterations`` iterations, ``total`` of
        them (see tasks/campaign/decide.py)."""
        trials = all_trials(self.folder, iterations)
        symbol, timeframe = best["market"].split(":")
        mine = trials[trials["market"] == best["market"]]
        matrix = market_returns(self.folder, iterations, market_key(symbol, timeframe))
        return overfitting(best, mine["sharpe_per_bar"].to_numpy(dtype=float), max(total, 1), matrix)

    def critique(self, n: int, contract: Strategy) -> None:
        """The contract of iteration n + 1: Claude's patch when Claude designs (the offline critic when
        Claude fails to give a valid one; running out of money stops the campaign instead), else the
        offline critic's. Written as ``patches/iter_<n>.diff`` and ``.json`` and ``contracts/``."""
        began = time.monotonic()
        done = finished_iterations(self.folder)[:n]
        record: dict = {"critic": "offline"}
        nxt = None
        if self.designer == "claude":
            session = self.claude_session()
            try:
                trials = all_trials(self.folder, n)
                evidence = critic_evidence(
                    self.request.prompt,
                    self.gates.model_dump(),
                    contract,
                    done,
                    trials[trials["iteration"] == n] if len(trials) else trials,
                )
                patched = critique_with_claude(
                    session, contract, evidence, self.market_views()[0], self.request.max_changes, n
                )
                nxt, diff = patched.strategy, patched.diff
                if {i.type for i in nxt.indicators} != {i.type for i in contract.indicators}:
                    self.record.family = family_of(nxt)
                record = {
                    "critic": "claude",
                    "model": self.request.model,
                    "rationale": patched.rationale,
                    "patch": patched.patch,
                    "changed": patched.changed,
                    "rejected_patches": patched.rejected_patches,
                }
            except LLMFailure as exc:  # hours of work stand: this step falls back to the offline rules
                record = {"critic": "offline", "claude_error": str(exc)}
            finally:
                self.spend(session, f"critique_{n}")
                record["calls"] = [c.model_dump() for c in session.calls]
        if nxt is None:
            nxt, diff, offline = self.critique_offline(n, contract, done)
            record.update(offline)
        record.update(family=self.record.family, seconds=round(time.monotonic() - began, 3))
        write_text(self.folder, f"patches/iter_{n}.diff", diff)
        atomic_write_json(self.folder / "patches" / f"iter_{n}.json", record)
        write_text(self.folder, f"contracts/iter_{n + 1}.yaml", strategy_to_yaml(nxt))

    def critique_offline(self, n: int, contract: Strategy, done: list[dict]) -> tuple[Strategy, str, dict]:
        first = self.markets[0]
        volatility = median_abs_return(first.bars, len(first.bars)) or 1e-3
        fresh = {
            family: (
                lambda family=family: fresh_contract(
                    family, first.symbol, first.timeframe, self.request.seed + n, volatility
                )
            )
            for family in BRIEF_FAMILIES
        }
        result = critique_offline(
            contract,
            done[n - 1]["best"],
            since_improvement(done, self.request.stop.min_improvement),
            [it.get("family") for it in done],
            self.gates.min_trades,
            self.gates.max_drawdown,
            self.request.max_changes,
            n,
            fresh,
        )
        switched = next((a["family"] for a in result.actions if a["rule"] == "switch_family"), None)
        if switched:
            self.record.family = switched
        return result.contract, result.diff, {"actions": result.actions, "changed": result.changed}

    # --- the end -----------------------------------------------------------------------------------

    def conclude(self) -> None:
        record = self.record
        trials = all_trials(self.folder, len(record.iterations))
        scored = trials[trials["score"].notna()] if len(trials) else trials
        if not len(scored):
            record.verdict, record.rationale = verdict(None, None, None, self.gates)
        else:
            row = scored.loc[scored["score"].idxmax()].to_dict()
            best = strict_json(row)
            record.best = best
            record.overfitting = self.luck(best, len(record.iterations), record.trials)
            record.holdout = self.holdout(best)
            record.verdict, record.rationale = verdict(best, record.overfitting, record.holdout, self.gates)
        record.exports = self.export() if record.verdict == "promote_candidate" else None
        board = leaderboard(trials) if len(trials) else pd.DataFrame()
        write_text(self.folder, "leaderboard.csv", board.to_csv(index=False))
        png = trajectory_png(record.iterations, f"campaign {record.campaign_id}")
        atomic_write_bytes(self.folder / "trajectory.png", png)
        folds = self.folds_picture()
        if folds is not None:
            atomic_write_bytes(self.folder / FOLDS_PNG, folds)
        folds_name = FOLDS_PNG if folds is not None else None
        write_text(self.folder, "report.md", report_markdown(record, board, "trajectory.png", folds_name))

    def folds_picture(self) -> bytes | None:
        """``folds.png``: the walk-forward folds of the chosen candidate's contract on its market, with its
        OOS Sharpe per fold and on the holdout (no candidate: the last contract's folds on the first
        market). None when that contract cannot be cut into folds there (its iteration failed)."""
        record, best = self.record, self.record.best
        n = int(best["iteration"]) if best else max(len(record.iterations), 1)
        market = next(
            (m for m in self.markets if best and f"{m.symbol}:{m.timeframe}" == best["market"]),
            self.markets[0],
        )
        try:
            runs = contract_on(load_strategy(self.folder / "contracts" / f"iter_{n}.yaml"), market)
            purge = purge_bars(runs)  # the folds run_market cut for this contract and market
            folds = walk_forward_folds(len(market.bars), self.request.folds, self.request.walk_forward, purge)
        except (OSError, ValueError) as exc:  # a contract or fold error names the field and the fix
            progress_log.warning("no walk-forward picture: %s", exc)
            return None
        title = (
            f"{runs.strategy_id} on {market.symbol} {market.timeframe}: {len(folds)} {self.request.walk_forward} "
            f"walk-forward folds, purge {purge} bars" + (f"; best candidate (iteration {n})" if best else "")
        )
        return folds_png(
            folds,
            market.bars.index,
            pd.Timestamp(market.seal.sealed_from),
            market.seal.sealed_bars,
            title,
            fold_sharpe=[best.get(f"fold{f.index + 1}_sharpe") for f in folds] if best else None,
            in_sample_sharpe=best.get("is_sharpe") if best else None,
            holdout_opened=record.holdout is not None,
            holdout_sharpe=(record.holdout or {}).get("sharpe"),
        )

    def export(self) -> dict:
        """The promoted candidate (``best_contract.yaml``) on every target, into ``exports/``. An error is
        recorded in its place: the campaign's verdict stands, and `stratlab export` can try again."""
        try:
            exports = campaign_export(self.folder)
        except Exception as exc:
            exports = {"folder": str(self.folder / "exports"), "error": f"{type(exc).__name__}: {exc}"[:2000]}
            progress_log.warning("export of the promoted candidate failed: %s", exports["error"])
        else:
            progress_log.info("promoted candidate exported to %s", exports["folder"])
        return exports

    def best_contract(self, best: dict) -> tuple[Strategy, DevelopmentMarket]:
        contract = load_strategy(self.folder / "contracts" / f"iter_{int(best['iteration'])}.yaml")
        market = next(m for m in self.markets if f"{m.symbol}:{m.timeframe}" == best["market"])
        runs = contract_on(contract, market)
        params = {k: best[k] for k in runs.optimization_space if k in best and best[k] is not None}
        chosen = runs.with_params(params)
        write_text(self.folder, "best_contract.yaml", strategy_to_yaml(chosen))
        return chosen, market

    def holdout(self, best: dict) -> dict:
        """The chosen candidate on the sealed bars, once (read back if it was already evaluated)."""
        done = self.folder / "holdout.json"
        if done.is_file():
            return json.loads(done.read_text(encoding="utf-8"))
        chosen, market = self.best_contract(best)
        bars, start = open_holdout(self.folder, market.seal, chosen.strategy_id)
        outputs = None
        if chosen.has_model:  # trained on the development bars (the last fifth validates), kept
            fit = start * 4 // 5
            bounds = SplitBounds(train=(0, fit), validation=(fit, start), test=(start, len(bars)))
            trained = train_model(chosen, bars, feature_frame(bars, chosen), bounds, self.request.seed)
            outputs = trained.predictions.add_prefix("model.")
            atomic_write_bytes(self.folder / "best_model.ckpt", trained.checkpoint)
            atomic_write_json(
                self.folder / "best_model.json",
                {
                    "candidate": chosen.strategy_id,
                    "trained_on": {"train": bounds.train, "validation": bounds.validation},
                    "metrics": trained.metrics.model_dump(mode="json", exclude={"loss_curve"}),
                    "provenance": provenance(self.request.seed, "", "market data"),
                },
            )
        combos = pd.DataFrame({k: [chosen.optimization_space[k].value] for k in chosen.optimization_space})
        sim = simulate_chunk(chosen, bars, combos, start, len(bars), outputs)
        metrics = column_metrics(sim, bars_per_year(bars.index)).iloc[0].to_dict()
        result = strict_json(
            {
                "candidate": chosen.strategy_id,
                "market": best["market"],
                "start": str(bars.index[start]),
                "end": str(bars.index[-1]),
                "bars": len(bars) - start,
                **{k: float(v) for k, v in metrics.items()},
            }
        )
        atomic_write_json(done, result)
        return result

    # --- state --------------------------------------------------------------------------------------

    def move(self, state: str, reason: str, iteration: int) -> None:
        self.record.move(state, reason, iteration)
        self.record.save(self.folder)
        message = f"iteration {iteration} | {state} | {reason}"
        if state == "campaign_evaluated" and self.record.iterations:
            last = self.record.iterations[-1]
            score = "none" if last["best_score"] is None else f"{last['best_score']:.4f}"
            message += f" | {last['trials']} trials, best score {score}"
        progress_log.info(message)
        _show_state(message)

    def pause(self, reason: str) -> None:
        if self.record.state not in ("completed", "failed", "paused", "queued"):
            self.move("paused", reason, len(self.record.iterations))

    def fail(self, exc: BaseException) -> None:
        self.record.error = f"{type(exc).__name__}: {exc}"[:2000]
        code = getattr(exc, "reason", None) or type(exc).__name__  # BudgetExhausted: budget_exhausted
        if isinstance(exc, BudgetExhausted):
            self.record.stop_reason, self.record.stop_detail = code, str(exc)
        if self.record.state not in ("completed", "failed"):
            if self.record.state == "paused":
                self.record.move(self.record.resumed_state(), "resumed", len(self.record.iterations))
            self.move("failed", code, len(self.record.iterations))

    def summary(self) -> CampaignSummary:
        r = self.record
        return CampaignSummary(
            campaign_id=r.campaign_id,
            state=r.state,
            stop_reason=r.stop_reason,
            verdict=r.verdict,
            iterations=len(r.iterations),
            trials=r.trials,
            best=r.best,
            report_dir=str(self.folder),
        )

    def show_progress(self, percent: float) -> None:
        if not flow_run.get_id():
            return
        if self.progress_id is None:
            self.progress_id = create_progress_artifact(percent, description="Campaign: iterations done")
        else:
            update_progress_artifact(self.progress_id, percent)

    def publish(self, n: int) -> None:
        """After each iteration: the leaderboard and the score trajectory as artifacts of the run."""
        if not flow_run.get_id():
            return
        self.show_progress(100.0 * n / self.request.stop.max_iterations)
        trials = all_trials(self.folder, n)
        board = leaderboard(trials, top=10)
        key = f"campaign-{self.record.campaign_id}".replace("_", "-")[:90]
        create_table_artifact(strict_json(board.to_dict("records")), key=f"{key}-leaderboard")
        png = trajectory_png(self.record.iterations, f"campaign {self.record.campaign_id}")
        best = max(
            (it["best_score"] for it in self.record.iterations if it["best_score"] is not None), default=None
        )
        text = (
            f"# Campaign {self.record.campaign_id}: iteration {n}\n\n"
            f"{self.record.trials:,} trials so far; best score {best if best is None else f'{best:.4f}'}.\n\n"
            f"![best score by iteration]({data_uri(png)})\n"
        )
        create_markdown_artifact(text, key=f"{key}-trajectory", description="Campaign score trajectory")


def _show_state(message: str) -> None:
    """The run stays Running; its message says where the campaign is (UI and `stratlab campaign status`)."""
    run_id = flow_run.get_id()
    if run_id:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
            if state is not None and state.is_running():  # never overwrite a suspension or a cancel
                client.set_flow_run_state(run_id, Running(message=message[:300]), force=True)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return [head, "|" + "---|" * len(frame.columns), *rows]


def report_markdown(
    record: CampaignRecord, board: pd.DataFrame, png_name: str, folds_name: str | None = None
) -> str:
    """The campaign's report: verdict and rationale first, then the path that led there. ``png_name``
    (the score trajectory) and ``folds_name`` (the walk-forward folds) are pictures beside it."""
    lines = [
        f"# Campaign {record.campaign_id}",
        "",
        f"**Verdict: {record.verdict}** (stopped: {record.stop_reason}; {len(record.iterations)} iterations, "
        f"{record.trials:,} trials)",
        "",
        "> " + record.request["prompt"].replace("\n", "\n> "),
        "",
        *([f"Stop detail: {record.stop_detail}", ""] if record.stop_detail else []),
        *(
            [f"Claude: {record.costs['llm_calls']} calls, ${record.costs['usd']:.4f}.", ""]
            if record.costs.get("llm_calls")
            else []
        ),
        "## Rationale",
        "",
        "| criterion | value | threshold | passed |",
        "|---|---|---|---|",
    ]
    for row in record.rationale:
        lines.append(
            f"| {row['criterion']} | {_fmt(row['value'])} | {row['op']} {_fmt(row['threshold'])} | "
            f"{'yes' if row['passed'] else 'no'} |"
        )
    if record.best:
        best = record.best
        params = ", ".join(f"`{k}` = {_fmt(v)}" for k, v in best.items() if "." in k)
        lines += [
            "",
            "## Best candidate",
            "",
            f"{best['strategy_id']} on {best['market']} (iteration {best.get('iteration')}): {params}",
            f"walk-forward OOS Sharpe {_fmt(best['oos_sharpe'])}, annual return {_fmt(best['oos_annual_return'])}, "
            f"max drawdown {_fmt(best['oos_max_drawdown'])}, {best['oos_trades']} trades, "
            f"degradation {_fmt(best['oos_degradation'])}, fold Sharpe std {_fmt(best['fold_sharpe_std'])}.",
        ]
    if record.overfitting:
        o = record.overfitting
        lines += [
            "",
            f"Multiple testing: {o['trials']:,} trials; PSR {_fmt(o.get('psr'))}, deflated Sharpe "
            f"{_fmt(o.get('dsr'))}, PBO {_fmt(o.get('pbo'))} (CSCV, {o.get('pbo_splits', 0)} splits).",
        ]
    if record.holdout:
        h = record.holdout
        lines += [
            "",
            f"Holdout (opened once, {h['start']} to {h['end']}, {h['bars']} bars): Sharpe {_fmt(h.get('sharpe'))}, "
            f"return {_fmt(h.get('total_return'))}, max drawdown {_fmt(h.get('max_drawdown'))}, "
            f"{_fmt(h.get('trades'))} trades.",
        ]
    if record.exports:
        lines += ["", *exports_markdown(record.exports)]
    lines += ["", "## Iterations", "", "| iteration | strategy | trials | best score |", "|---|---|---|---|"]
    for it in record.iterations:
        lines.append(
            f"| {it['iteration']} | {it['strategy_id']} | {it['trials']} | {_fmt(it['best_score'])} |"
        )
    lines += ["", f"![score trajectory]({png_name})", ""]
    if folds_name:
        lines += [
            "## Walk-forward folds",
            "",
            "Where each fold learns and is tested (purge gaps between), the sealed holdout after them, "
            "and the best candidate's out-of-sample Sharpe on each test segment.",
            "",
            f"![walk-forward folds]({folds_name})",
            "",
        ]
    lines += ["## Leaderboard", ""]
    if len(board):
        lines += _markdown_table(board.head(10))
    lines += ["", "## State transitions", ""]
    lines += [f"- {t.at} {t.state} ({t.reason}, iteration {t.iteration})" for t in record.transitions]
    return "\n".join(lines) + "\n"


def exports_markdown(exports: dict) -> list[str]:
    """The report's section on the promoted candidate's exports."""
    lines = ["## Exports", ""]
    if exports.get("error"):
        return lines + [
            f"The export failed: {exports['error']}",
            "",
            "To try again, run `stratlab export best_contract.yaml --out exports` in this folder (with "
            "`--model best_model.ckpt` for a neural candidate).",
        ]
    model = f", with its model `{exports['model_file']}`" if exports.get("model_file") else ""
    lines += [f"`best_contract.yaml`{model}, in `exports/` (diagnostics in `exports/export.json`):", ""]
    for name, result in exports["targets"].items():
        lines.append(
            f"- {name}: `exports/{result['file']}`"
            if result["file"]
            else f"- {name}: refused: {result['refused']}"
        )
    return lines


def run_campaign(request: CampaignRequest, campaign_id: str | None = None) -> CampaignSummary:
    """The campaign in this process (Prefect's ephemeral API unless PREFECT_API_URL is set)."""
    return campaign(request, campaign_id)

"""`stratlab campaign ...`: run a campaign in this process, or start, watch, pause, resume and cancel one
on the server `stratlab up` started. Status and listings read Prefect's API and the reports, never an
LLM."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from stratlab.common import console, fail, prepare_prefect_env, print_json, use_server

campaign_app = typer.Typer(
    help="Campaigns: design, sweep, evaluate and refine until a verdict.", no_args_is_help=True
)

Prompt = Annotated[str | None, typer.Option(help="What you want, in a few sentences.")]
Markets = Annotated[
    list[str] | None, typer.Option("--market", help="SYMBOL:timeframe, repeatable (default EURUSD:1h).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
StrategyFile = Annotated[
    str | None, typer.Option("--strategy", help="Start from this contract, not the prompt.")
]
MaxIterations = Annotated[int | None, typer.Option(help="Iterations at most (default 10).")]
MaxHours = Annotated[float | None, typer.Option(help="Hours spent in iterations at most (default 24).")]
MaxUsd = Annotated[float | None, typer.Option(help="Dollars for Claude at most (default none).")]
Trials = Annotated[int, typer.Option(help="Combinations per market and iteration.")]
Folds = Annotated[int, typer.Option(help="Walk-forward folds.")]
WalkForward = Annotated[str, typer.Option(help="anchored or rolling.")]
Holdout = Annotated[float, typer.Option(help="Sealed fraction of each market.")]
Seed = Annotated[int, typer.Option(help="Seed of every random choice.")]
Designer = Annotated[
    str, typer.Option(help="Who writes the brief and critiques: auto (Claude with a key), local, claude.")
]
Model = Annotated[str | None, typer.Option(help="Claude model (default: claude-opus-5).")]


def _request(options: dict) -> dict:
    """The request from the command's options (its parameters by name), checked before anything runs."""
    from tasks.campaign.request import CampaignInputError, check_markets, parse_request

    o = options
    data: dict = {
        "prompt": o["prompt"] or "",
        "seed": o["seed"],
        "folds": o["folds"],
        "designer": o["designer"],
    }
    data.update(
        walk_forward=o["walk_forward"], trials_per_iteration=o["trials"], holdout_fraction=o["holdout"]
    )
    for option, field in (("model", "model"), ("market", "markets"), ("strategy", "strategy_file")):
        if o[option]:
            data[field] = o[option]
    stop = {k: o[k] for k in ("max_iterations", "max_hours", "max_usd")}
    data["stop"] = {k: v for k, v in stop.items() if v is not None}
    try:
        request = parse_request(data)
        check_markets(request)
    except CampaignInputError as exc:
        raise fail(str(exc)) from None
    return request.model_dump(mode="json")


@campaign_app.command()
def run(
    prompt: Prompt = None,
    market: Markets = None,
    strategy: StrategyFile = None,
    max_iterations: MaxIterations = None,
    max_hours: MaxHours = None,
    max_usd: MaxUsd = None,
    trials: Trials = 200,
    folds: Folds = 5,
    walk_forward: WalkForward = "anchored",
    holdout: Holdout = 0.2,
    seed: Seed = 42,
    designer: Designer = "auto",
    model: Model = None,
    resume: Annotated[str | None, typer.Option(help="Continue the campaign of this id.")] = None,
    as_json: AsJson = False,
) -> None:
    """Run a campaign here (Prefect's ephemeral API; offline designer and critic unless a key is set).
    Ctrl-C pauses it; `--resume ID` goes on from the next unfinished iteration."""
    options = dict(locals())
    prepare_prefect_env()
    if resume:
        from deployments.campaigns import load

        try:
            request = load(resume).request
        except (LookupError, ValueError) as exc:
            raise fail(f"--resume: {exc}") from None
    else:
        if not prompt and not strategy:
            raise fail("--prompt: say what you want (or give --strategy)")
        request = _request(options)
    campaign_id = resume or f"c{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:8]}"
    if not as_json:
        console.print(f"campaign [bold]{campaign_id}[/bold]: {_folder(campaign_id)} (Ctrl-C pauses)")
    _follow_progress(as_json)
    from flows.campaign import run_campaign
    from tasks.campaign.request import CampaignRequest

    try:
        summary = run_campaign(CampaignRequest.model_validate(request), campaign_id)
    except KeyboardInterrupt:
        raise fail(f"paused: continue with `stratlab campaign run --resume {campaign_id}`") from None
    except Exception as exc:
        raise fail(str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}") from None
    if as_json:
        print_json(summary.model_dump(mode="json"))
        return
    _print_summary(summary.model_dump(mode="json"))


def _follow_progress(as_json: bool) -> None:
    if as_json:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("  %(message)s"))
    log = logging.getLogger("stratlab.campaign")
    log.addHandler(handler)
    log.setLevel(logging.INFO)


@campaign_app.command()
def start(
    prompt: Prompt = None,
    market: Markets = None,
    strategy: StrategyFile = None,
    max_iterations: MaxIterations = None,
    max_hours: MaxHours = None,
    max_usd: MaxUsd = None,
    trials: Trials = 200,
    folds: Folds = 5,
    walk_forward: WalkForward = "anchored",
    holdout: Holdout = 0.2,
    seed: Seed = 42,
    designer: Designer = "auto",
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Start a campaign on the server's worker (the `campaign` deployment)."""
    options = dict(locals())
    if not prompt and not strategy:
        raise fail("--prompt: say what you want (or give --strategy)")
    request = _request(options)
    use_server()
    from deployments.campaigns import start as start_run

    answer = start_run(request, f"c{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:8]}")
    if as_json:
        print_json(answer)
        return
    console.print(f"started campaign [bold]{answer['campaign_id']}[/bold] (flow run {answer['run_id']})")


def _row(record) -> dict:
    best = record.best or {}
    scores = [it.get("best_score") for it in record.iterations if it.get("best_score") is not None]
    return {
        "campaign_id": record.campaign_id,
        "state": record.state,
        "iterations": len(record.iterations),
        "trials": record.trials,
        "best_score": max(scores) if scores else None,
        "verdict": record.verdict,
        "stop_reason": record.stop_reason,
        "best": best.get("strategy_id"),
        "started": record.transitions[0].at if record.transitions else None,
        "flow_run_id": record.flow_run_id,
    }


@campaign_app.command("list")
def list_campaigns(as_json: AsJson = False) -> None:
    """Every campaign under reports/campaigns/, newest first."""
    from deployments.campaigns import records

    rows = [_row(r) for r in records()]
    if as_json:
        print_json({"campaigns": rows})
        return
    table = Table("campaign", "state", "iterations", "trials", "best score", "verdict", "stop reason")
    for r in rows:
        score = "-" if r["best_score"] is None else f"{r['best_score']:.4f}"
        table.add_row(
            r["campaign_id"],
            r["state"],
            str(r["iterations"]),
            f"{r['trials']:,}",
            score,
            r["verdict"] or "-",
            r["stop_reason"] or "-",
        )
    console.print(table)


def _record(campaign_id: str):
    from deployments.campaigns import load

    try:
        return load(campaign_id)
    except (LookupError, ValueError) as exc:
        raise fail(str(exc)) from None


@campaign_app.command()
def status(campaign_id: Annotated[str, typer.Argument(help="Campaign id.")], as_json: AsJson = False) -> None:
    """Where a campaign is: its state (and its Prefect run's, with a server), iteration, trials, best."""
    record = _record(campaign_id)
    run = None
    from deployments.stack import api_url

    if api_url():
        use_server()
        from deployments.campaigns import run_state

        run = run_state(record.flow_run_id)
    answer = {
        **_row(record),
        "run": run,
        "last_transition": record.transitions[-1].model_dump() if record.transitions else None,
    }
    if as_json:
        print_json(answer)
        return
    last = answer["last_transition"] or {}
    console.print(
        f"[bold]{campaign_id}[/bold]: {record.state} (iteration {last.get('iteration', 0)}, {last.get('reason', '')}), "
        f"{record.trials:,} trials, best score {answer['best_score']}"
        + (f"; run {run['state']}: {run['message']}" if run else "")
    )


@campaign_app.command()
def show(campaign_id: Annotated[str, typer.Argument(help="Campaign id.")], as_json: AsJson = False) -> None:
    """A campaign's record: request, transitions, iterations, verdict and rationale."""
    record = _record(campaign_id)
    if as_json:
        print_json(record.model_dump(mode="json"))
        return
    _print_summary({**_row(record), "best": record.best, "report_dir": str(_folder(campaign_id))})
    for row in record.rationale:
        mark = "[green]pass[/green]" if row["passed"] else "[red]fail[/red]"
        console.print(f"  {mark} {row['criterion']}: {row['value']} ({row['op']} {row['threshold']})")


def _folder(campaign_id: str):
    from tasks.campaign.report import campaign_dir

    return campaign_dir(campaign_id)


def _print_summary(summary: dict) -> None:
    best = summary.get("best") or {}
    console.print(
        f"[bold]{summary['campaign_id']}[/bold]: {summary['state']}, verdict [bold]{summary.get('verdict')}[/bold] "
        f"(stopped: {summary.get('stop_reason')}), {summary['iterations']} iterations, {summary['trials']:,} trials"
    )
    if best:
        params = ", ".join(f"{k}={v}" for k, v in best.items() if "." in k)
        console.print(
            f"best: {best.get('strategy_id')} on {best.get('market')}: {params}; score {best.get('score')}"
        )
    console.print(f"report: {summary.get('report_dir')}/report.md")


def _operate(action: str, campaign_id: str, as_json: bool) -> None:
    use_server()
    from deployments import campaigns

    try:
        answer = getattr(campaigns, action)(campaign_id)
    except (LookupError, ValueError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(answer)
        return
    done = next(v for k, v in answer.items() if isinstance(v, bool))
    console.print(
        f"{campaign_id}: " + (f"{action} asked" if done else f"not {action}d ({answer.get('reason')})")
    )


@campaign_app.command()
def pause(campaign_id: Annotated[str, typer.Argument(help="Campaign id.")], as_json: AsJson = False) -> None:
    """Suspend a running campaign (no timeout); it stops at its next step and holds no process."""
    _operate("pause", campaign_id, as_json)


@campaign_app.command()
def resume(campaign_id: Annotated[str, typer.Argument(help="Campaign id.")], as_json: AsJson = False) -> None:
    """Resume a paused campaign (or run again one that failed, crashed or was cancelled)."""
    _operate("resume", campaign_id, as_json)


@campaign_app.command()
def cancel(campaign_id: Annotated[str, typer.Argument(help="Campaign id.")], as_json: AsJson = False) -> None:
    """Cancel a campaign's run; its finished iterations stay."""
    _operate("cancel", campaign_id, as_json)

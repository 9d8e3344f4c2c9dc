"""`stratlab up / down / trigger / status / cancel`: operate cycles through a Prefect server."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from stratlab.common import EXIT_ERROR, EXIT_GATE, console, fail, prepare_prefect_env, print_json, use_server


def up(
    port: Annotated[int, typer.Option(help="Port for a new server on 127.0.0.1.")] = 4200,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Port of the metrics exporter on 127.0.0.1 (default $STRATLAB_METRICS_PORT or 9108)."
        ),
    ] = None,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Also start Debian's prometheus, scraping the exporter.")
    ] = False,
    prometheus_port: Annotated[int, typer.Option(help="Port of that Prometheus on 127.0.0.1.")] = 9090,
    database: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL URL for a new server's database (postgresql://user:pass@host:5432/db), "
            "for a fleet of workers; default: Prefect's SQLite file."
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(help="Address a new server listens on; other than 127.0.0.1, protect it (README)."),
    ] = "127.0.0.1",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start (or find) a Prefect server on 127.0.0.1, set it up, deploy prefect.yaml, start a worker and
    the metrics exporter (and Prometheus with --prometheus)."""
    from deployments.stack import up as stack_up

    prepare_prefect_env()
    try:
        stack = stack_up(
            port=port,
            say=(lambda _: None) if as_json else console.print,
            metrics_port=metrics_port,
            prometheus_port=prometheus_port if prometheus else None,
            database=database,
            host=host,
        )
    except (RuntimeError, OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json({**stack.model_dump(), "ui_url": stack.ui_url})
    else:
        console.print(f"[bold green]ready[/bold green]  Prefect UI: {stack.ui_url}")
        console.print(f"       metrics: {stack.metrics_url}")
        if stack.prometheus_url:
            console.print(f"       Prometheus: {stack.prometheus_url}/graph")


def down(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Stop what `stratlab up` started: Prometheus, the metrics exporter, the worker and the server."""
    from deployments.stack import StopRefused
    from deployments.stack import down as stack_down

    notes: list[str] = []  # with --json, what `down` says (e.g. why a pid was left alone) goes in the JSON
    try:
        stopped = stack_down(say=notes.append if as_json else console.print)
    except (StopRefused, OSError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json({"stopped": stopped, "notes": notes})


def trigger(
    strategy: Annotated[
        str | None, typer.Option(help="Contract to run, as the worker sees the path.")
    ] = None,
    designer: Annotated[str, typer.Option(help="auto, claude or local.")] = "auto",
    assessor: Annotated[str, typer.Option(help="auto, claude or local.")] = "auto",
    symbol: Annotated[str | None, typer.Option()] = None,
    seed: Annotated[int, typer.Option()] = 42,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start a cycle on the research-cycle deployment, or say why not (cycle_in_progress, budget_exhausted)."""
    use_server()
    from deployments.cycles import trigger as start

    params = {
        "strategy_file": strategy,
        "designer": designer,
        "assessor": assessor,
        "symbol": symbol,
        "seed": seed,
    }
    answer = start({k: v for k, v in params.items() if v is not None})
    if as_json:
        print_json(answer.model_dump())
    elif answer.triggered:
        console.print(f"[green]started[/green] research cycle, run id {answer.run_id}")
    else:
        console.print(f"[yellow]not started[/yellow]: {answer.reason} ({answer.detail})")
    raise typer.Exit(0 if answer.triggered else EXIT_GATE)


def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The active cycle (phase, strategy, elapsed, run id) and the last cycles; reads Prefect's API only."""
    use_server()
    from deployments.cycles import status as read_status

    report = read_status()
    if as_json:
        print_json(report)
        return
    active = report["active"]
    if active:
        console.print(
            f"[bold]active[/bold] {active['run_id']} {active['state']}: phase {active['phase'] or '-'}, "
            f"strategy {active['strategy_id'] or '-'}, {active['elapsed_s']:.0f} s"
        )
    else:
        console.print("no active cycle")
    table = Table("run id", "name", "outcome", "reason / message", "seconds")
    for run in report["last"]:
        table.add_row(
            run["run_id"], run["name"], run["state"], run["message"] or "", f"{run['elapsed_s'] or 0:.0f}"
        )
    console.print(table)


def cancel(
    run_id: Annotated[str | None, typer.Argument(help="Run to cancel; default: the active cycle.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Cancel the active cycle (or RUN_ID); the worker stops it and its slot is released."""
    use_server()
    from deployments.cycles import cancel as request_cancel

    answer = request_cancel(run_id)
    if as_json:
        print_json(answer)
    elif answer["cancelled"]:
        console.print(f"cancelling {answer['run_id']}")
    else:
        console.print(f"nothing cancelled: {answer['reason']}")
    raise typer.Exit(0 if answer["cancelled"] else EXIT_ERROR)

"""`stratlab metrics`: the metrics exporter (what Prometheus scrapes), once or as a server."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stratlab.common import console, fail, prepare_prefect_env


def metrics(
    serve: Annotated[
        int | None,
        typer.Option(
            metavar="PORT", help="Serve /metrics on 127.0.0.1:PORT until stopped (what `up` starts)."
        ),
    ] = None,
) -> None:
    """Print Strategy Lab's metrics once, in Prometheus' text format, or serve them with --serve PORT.

    They are computed on each request from Prefect's API (the server `stratlab up` started, or
    $PREFECT_API_URL), the budget ledger and the reports: a restarted exporter loses nothing."""
    from deployments.stack import api_url

    api = api_url()
    if not api:
        raise fail("no Prefect server: run `stratlab up` (or set PREFECT_API_URL)")
    prepare_prefect_env()
    from tasks.observe.exporter import exposition
    from tasks.observe.exporter import serve as serve_forever

    if serve is None:
        sys.stdout.write(exposition(api))
        return
    if not 0 < serve < 65536:
        raise fail(f"--serve: {serve} is not a port number (1-65535)")
    console.print(f"metrics: serving http://127.0.0.1:{serve}/metrics from {api}")
    try:
        serve_forever(serve, api_url=api)
    except OSError as exc:
        raise fail(f"--serve {serve}: {exc.strerror or exc}") from None

"""`stratlab`: run research cycles, operate them through Prefect, list data and strategies.

One module per command group: ``cycle``, ``sweep``, ``campaign``, ``export``, ``metrics``, ``operate``
(up, down, trigger, status, cancel) and ``catalog`` (data, strategies, budget); ``common`` holds what
they share.
Heavy libraries (Prefect, torch, vectorbt) are imported inside the commands that need them, so
`stratlab --help` and the listing commands answer at once.
"""

from __future__ import annotations

import typer

from stratlab import campaign, catalog, cycle, export, metrics, operate, sweep
from stratlab.common import prepare_prefect_env

__all__ = ["app", "prepare_prefect_env"]

app = typer.Typer(
    help="Strategy Lab: design, train, backtest and assess trading strategies.", no_args_is_help=True
)
app.command()(cycle.cycle)
app.command()(sweep.sweep)
for command in (operate.up, operate.down, operate.trigger, operate.status, operate.cancel):
    app.command()(command)
app.command()(catalog.budget)
app.command()(export.export)
app.command()(metrics.metrics)
app.add_typer(campaign.campaign_app, name="campaign")
app.add_typer(catalog.data_app, name="data")
app.add_typer(catalog.strategies_app, name="strategies")

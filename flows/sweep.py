"""The `sweep` flow: every combination of a contract's optimisation space (or an Optuna sample of a
space too large for its grid), evaluated on the selection bars, ranked, and reported.

What may choose (DESIGN.md, the research protocol): only the selection bars, train + validation for a
rule-only contract and validation for a model (trained on train); the held-out part is never simulated.
The operator's floors (``stratlab.toml``) apply to the contract before anything runs.

Chunks of combinations are Prefect tasks (``sweep-chunk``), run one at a time in this process, or on a
Dask cluster with ``dask="tcp://host:8786"`` (``$STRATLAB_DASK_ADDRESS``) or ``dask="local:N"`` (a local
cluster of N worker processes, started and stopped with the sweep) through prefect-dask's
``DaskTaskRunner``. The results are the same either way: each chunk is a pure function of its inputs.
Model strategies train one model per group of combinations (``sweep-train``, cached like a cycle's
training) before their chunks run.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field

from strategy_contract import Strategy, load_strategy
from strategy_contract.io import strict_json
from tasks.backtest import bars_per_year, rows_per_bar
from tasks.data import load_market_data
from tasks.edge import cached_step, uncached_step
from tasks.observe.traces import annotate, configure_tracing
from tasks.provenance import provenance
from tasks.settings import enforce_operator_rules
from tasks.splits import SplitBounds, split_bounds
from tasks.sweep.evaluate import chunk_size, chunks, evaluate_chunk
from tasks.sweep.groups import TrainedGroup, groups, train_group
from tasks.sweep.objective import Objective, rank, score
from tasks.sweep.report import (
    LEADERBOARD_METRICS,
    data_uri,
    heatmap_png,
    importance,
    write_report,
)
from tasks.sweep.search import optuna_search
from tasks.sweep.space import Space, SweepInputError

configure_tracing()  # before any run: Prefect's spans need this process's tracer provider

DASK_ENV = "STRATLAB_DASK_ADDRESS"

# Called with (done, total) as combinations finish; the CLI hangs its progress bar here.
PROGRESS_LISTENERS: list[Callable[[int, int], None]] = []


def _sweep_chunk(
    strategy: Strategy,
    bars: pd.DataFrame,
    combos: pd.DataFrame,
    start: int,
    stop: int,
    per_year: float,
    model_outputs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`evaluate_chunk`, with the chunk's size added to its task run's span (Prefect opens the span)."""
    annotate({"stratlab.chunk.combinations": len(combos), "stratlab.chunk.bars": stop - start})
    return evaluate_chunk(strategy, bars, combos, start, stop, per_year, model_outputs)


sweep_chunk = uncached_step(_sweep_chunk, "sweep-chunk")
sweep_train = cached_step(train_group, "sweep-train")


class SweepParams(BaseModel):
    """What a sweep runs. The form of the `sweep` deployment is made from these fields."""

    model_config = ConfigDict(extra="forbid")

    strategy_file: str = Field(
        description="Contract to sweep (YAML path), e.g. strategies/ema_cross_atr.yaml."
    )
    symbol: str | None = Field(None, description="Market, e.g. EURUSD; empty: the contract's own.")
    timeframe: str | None = Field(None, description="Bar size, e.g. 1h; empty: the contract's own.")
    method: Literal["grid", "optuna"] = Field(
        "grid", description="grid: every combination (refused over max_combos); optuna: a TPE sample."
    )
    max_combos: int = Field(10_000, ge=1, le=5_000_000, description="Grid limit, or Optuna's trial count.")
    batch: int = Field(256, ge=1, le=100_000, description="Optuna: combinations asked and told per batch.")
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Seed for Optuna's sampler and model training.")
    objective: Objective = Field("sharpe", description="What the best combination maximises.")
    min_trades: int | None = Field(
        None, ge=0, description="Fewer closed trades cannot win; empty: the contract's backtest gate."
    )
    top: int = Field(10, ge=1, le=1000, description="Rows of the leaderboard.")
    dask: str | None = Field(
        None, description="Dask scheduler address (tcp://host:8786), or local:N for N local workers."
    )
    chunk: int | None = Field(
        None, ge=1, description="Combinations per chunk; empty: sized from the bar count (bounded memory)."
    )


class SweepResult(BaseModel):
    """What `stratlab sweep --json` prints and the flow returns."""

    sweep_id: str
    strategy_id: str
    symbol: str
    timeframe: str
    method: str
    objective: str
    min_trades: int
    selection_part: str
    start: str
    end: str
    bars: int
    grid_size: int = Field(description="Combinations in the full grid of the space.")
    trials: int = Field(description="Combinations asked for (grid: evaluated), every one counted.")
    evaluated: int = Field(description="Distinct combinations simulated.")
    chunks: int
    chunk_size: int
    trained_groups: int
    dask: str | None
    best: dict | None = Field(description="Parameters and metrics of the winner; None if none may win.")
    importance: dict[str, float]
    leaderboard: list[dict]
    report_dir: str
    seconds: float


LOCAL_DASK = re.compile(r"local:([1-9]\d{0,2})")
DASK_ADDRESS = re.compile(r"(tcp|tls|inproc|ws|wss)://[\w.\-:\[\]]+")


def check_dask(dask: str | None) -> None:
    """A scheduler address or local:N (1-999 workers), or nothing."""
    if dask and not (LOCAL_DASK.fullmatch(dask) or DASK_ADDRESS.fullmatch(dask)):
        raise SweepInputError(
            f"--dask: '{dask}' is neither a scheduler address (tcp://host:8786) nor local:N (N >= 1)"
        )


def task_runner(dask: str | None):
    """In-process (one chunk at a time: the simulator holds the GIL, and memory stays one chunk's),
    or prefect-dask on a cluster."""
    check_dask(dask)
    if not dask:
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    local = LOCAL_DASK.fullmatch(dask)
    if not local:
        return DaskTaskRunner(address=dask)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": int(local.group(1)),
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            # the workers report their task runs to this run's API: without it each would start an
            # ephemeral server of its own (~15 s) and its runs would land in another database
            "env": {"PREFECT_API_URL": _api_url()},
        },
    )


def _api_url() -> str:
    """The API this process talks to (a server's, or the ephemeral one Prefect started for it)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url).rstrip("/")


def dask_address(params: SweepParams) -> str | None:
    """The cluster a sweep runs on: ``params.dask``, else ``$STRATLAB_DASK_ADDRESS``, else none."""
    return params.dask or os.environ.get(DASK_ENV) or None


def check_request(params: SweepParams) -> tuple[Strategy, Space]:
    """The contract as it will run (on its market, under the operator's floors) and its space; raises
    naming the field when the sweep cannot run. Cheap: the CLI calls it before starting Prefect."""
    strategy = load_strategy(params.strategy_file)
    strategy = strategy.on_market(
        (params.symbol or strategy.symbol).upper(), params.timeframe or strategy.timeframe
    )
    strategy = enforce_operator_rules(strategy)
    check_dask(dask_address(params))
    space = Space.of(strategy)
    if params.method == "grid":
        space.check_limit(params.max_combos)
    return strategy, space


class _Progress:
    """Fans progress out to the CLI's listeners and a Prefect progress artifact (at most every 2 s)."""

    def __init__(self, total: int):
        self.total, self.done, self._shown_at = total, 0, 0.0
        self._artifact = None
        try:
            from prefect.artifacts import create_progress_artifact

            self._artifact = create_progress_artifact(0.0, description="Combinations evaluated (%)")
        except Exception:  # outside a run context there is nowhere to show it
            self._artifact = None

    def advance(self, count: int) -> None:
        self.set(self.done + count)

    def set(self, done: int) -> None:
        self.done = min(self.total, done)
        for listener in PROGRESS_LISTENERS:
            listener(self.done, self.total)
        now = time.monotonic()
        if self._artifact is not None and (now - self._shown_at > 2 or self.done == self.total):
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(self._artifact, 100.0 * self.done / max(self.total, 1))
            self._shown_at = now


class _Evaluator:
    """Evaluates combinations chunk by chunk on the task runner, training model groups first."""

    def __init__(self, strategy, market, bounds: SplitBounds, per_year, params, runner, size, progress=None):
        self.strategy, self.market, self.bounds, self.per_year = strategy, market, bounds, per_year
        self.params, self.runner, self.size, self.progress = params, runner, size, progress
        self.start, self.stop = bounds.selection(strategy.has_model)
        self.model_keys = Space.of(strategy).model_keys()
        self.trained: dict[tuple, TrainedGroup] = {}
        self.chunks = 0

    def group(self, group_params: dict) -> TrainedGroup | None:
        if not self.model_keys:
            return None
        key = tuple(group_params.values())
        if key not in self.trained:
            self.trained[key] = sweep_train(
                self.strategy, self.market.bars, self.bounds, group_params, self.params.seed
            )
        return self.trained[key]

    def __call__(self, combos: pd.DataFrame) -> pd.DataFrame:
        pending = []
        for group_params, part in groups(combos, self.model_keys):
            trained = self.group(group_params)
            for piece in chunks(part, self.size):
                future = self.runner.submit(
                    sweep_chunk,
                    parameters={
                        "strategy": self.strategy,
                        "bars": self.market.bars,
                        "combos": piece,
                        "start": self.start,
                        "stop": self.stop,
                        "per_year": self.per_year,
                        "model_outputs": trained.model_outputs if trained else None,
                    },
                )
                pending.append((future, trained))
        parts = []
        for future, trained in pending:
            table = future.result()
            if trained is not None:
                table["trained"] = trained.passed_gate
                table["training_accuracy"] = trained.accuracy
            parts.append(table)
            self.chunks += 1
            if self.progress:
                self.progress.advance(len(table))
        return pd.concat(parts).loc[combos.index]


def _sweep_id(strategy: Strategy, run_id: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{strategy.strategy_id.replace('@', '-at-')}-{stamp}-{run_id[:8]}"


def _artifact_key(sweep_id: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", sweep_id.lower()).strip("-")[:100]


@flow(name="sweep", log_prints=False)
def sweep(params: SweepParams) -> SweepResult:
    """Sweep a contract's optimisation space on its selection bars; write reports/sweeps/<id>/."""
    began = time.monotonic()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    strategy, space = check_request(params)
    market = load_market_data(strategy.symbol, strategy.timeframe)
    bars = market.bars
    bounds = split_bounds(len(bars), strategy.data)
    start, stop = bounds.selection(strategy.has_model)
    per_year = bars_per_year(bars.index)
    min_trades = strategy.gates.backtest.min_trades if params.min_trades is None else params.min_trades
    size = params.chunk or chunk_size(len(bars), rows=rows_per_bar(strategy))
    grid = space.grid(params.max_combos) if params.method == "grid" else None

    def scored(table: pd.DataFrame) -> pd.Series:
        return score(table, params.objective, min_trades, stop - start, per_year)

    progress = _Progress(len(grid) if grid is not None else params.max_combos)
    with task_runner(dask_address(params)) as runner:
        per_chunk = progress if grid is not None else None  # Optuna's progress counts trials, per batch
        evaluate = _Evaluator(strategy, market, bounds, per_year, params, runner, size, per_chunk)
        if grid is not None:
            table = evaluate(grid)
            table.insert(0, "trial", np.arange(len(table)))
            table["score"] = scored(table)
            trials = len(table)
        else:
            table, trials = optuna_search(
                space,
                evaluate,
                scored,
                params.max_combos,
                params.batch,
                params.seed,
                on_batch=lambda asked, _total: progress.set(asked),
            )

    ranked = rank(table)
    top = ranked.head(params.top)
    leaderboard = top[[*space.keys, *LEADERBOARD_METRICS]]
    first = _records(top.head(1))
    winner = first[0] if first and first[0]["score"] is not None else None
    best_params = {k: winner[k] for k in space.keys} if winner is not None else None
    best_contract = strategy.with_params(best_params) if best_params else None
    weights = importance(table, space.keys)
    axes = [k for k in weights][:2]
    title = f"{strategy.strategy_id} on {strategy.symbol} {strategy.timeframe}: best {params.objective}"
    png = heatmap_png(table, axes[0], axes[1] if len(axes) > 1 else None, title)

    sweep_id = _sweep_id(strategy, run_id)
    result = SweepResult(
        sweep_id=sweep_id,
        strategy_id=strategy.strategy_id,
        symbol=strategy.symbol,
        timeframe=strategy.timeframe,
        method=params.method,
        objective=params.objective,
        min_trades=min_trades,
        selection_part=SplitBounds.selection_part(strategy.has_model),
        start=str(bars.index[start]),
        end=str(bars.index[stop - 1]),
        bars=stop - start,
        grid_size=space.size,
        trials=trials,
        evaluated=len(table),
        chunks=evaluate.chunks,
        chunk_size=size,
        trained_groups=len(evaluate.trained),
        dask=dask_address(params),
        best=winner,
        importance=weights,
        leaderboard=_records(leaderboard),
        report_dir="",
        seconds=0.0,
    )
    groups_record = [
        {"params": g.params, "accuracy": g.accuracy, "passed_gate": g.passed_gate, "gate": g.gate_reason}
        for g in evaluate.trained.values()
    ]
    result.seconds = round(time.monotonic() - began, 2)
    folder = write_report(
        sweep_id,
        ranked,
        leaderboard,
        best_contract,
        png,
        {
            **result.model_dump(mode="json", exclude={"report_dir"}),
            "request": params.model_dump(mode="json"),
            "trained": groups_record,
            "provenance": provenance(params.seed, market.sha256, market.source),
        },
    )
    result.report_dir = str(folder)
    _publish(result, png)
    return result


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values in strict JSON: NaN (undefined) as None, infinity as "Infinity"."""
    return strict_json(frame.to_dict("records"))


def _publish(result: SweepResult, png: bytes) -> None:
    """The leaderboard as a table artifact and the heatmap in a markdown artifact."""
    key = _artifact_key(result.sweep_id)
    rows = result.leaderboard
    create_table_artifact(
        rows, key=f"{key}-leaderboard", description=f"Sweep {result.sweep_id}: top {len(rows)}"
    )
    create_markdown_artifact(sweep_markdown(result, png), key=f"{key}-summary", description="Sweep summary")


def sweep_markdown(result: SweepResult, png: bytes) -> str:
    best = result.best
    lines = [
        f"# Sweep of {result.strategy_id} on {result.symbol} {result.timeframe}",
        "",
        f"{result.method}: {result.trials:,} trials, {result.evaluated:,} distinct combinations "
        f"(grid of {result.grid_size:,}), {result.selection_part} bars {result.start} to {result.end}, "
        f"objective {result.objective}, at least {result.min_trades} closed trades to win; "
        f"{result.seconds:.1f} s.",
        "",
    ]
    if best is None:
        lines.append("**No combination may win** (too few trades, or an undefined objective, everywhere).")
    else:
        params = ", ".join(f"`{k}` = {best[k]}" for k in result.importance)
        lines.append(f"**Best**: {params}: score {best['score']:.4g}, {best['trades']} trades.")
    lines += ["", f"![best score by parameter]({data_uri(png)})", "", "Report: `" + result.report_dir + "`"]
    return "\n".join(lines)

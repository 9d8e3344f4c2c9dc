"""Evaluate a chunk of combinations in one vectorized pass: one panel, one ``Portfolio.from_signals``
call, one table of metrics.

Memory is bounded by the chunk: the panel holds a few (bars x combinations) arrays and vectorbt a few
(rows a bar x bars + 1) x combinations ones (1, 2 or 4 rows a bar: ``rows_per_bar``), so a chunk takes
:func:`chunk_size` combinations, sized from the bar count so that ``rows x combinations`` stays under
``STRATLAB_SWEEP_CELLS`` (default 2 million cells: a few hundred MB while a chunk runs, whatever the
grid).
"""

from __future__ import annotations

import gc
import os

import pandas as pd

from strategy_contract.models import Strategy
from tasks.backtest import Simulation, column_metrics, rows_per_bar, simulate
from tasks.sweep.panel import IndicatorCache, SweepPanel

CELLS_ENV = "STRATLAB_SWEEP_CELLS"
DEFAULT_CELLS = 2_000_000


def chunk_size(n_bars: int, cells: int | None = None, rows: int = 2) -> int:
    """Combinations per chunk for data of ``n_bars`` bars, when vectorbt gets ``rows`` rows a bar."""
    cells = cells or int(os.environ.get(CELLS_ENV, DEFAULT_CELLS))
    return max(1, cells // (rows * n_bars + 1))


def chunks(combos: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [combos.iloc[i : i + size] for i in range(0, len(combos), size)]


def simulate_chunk(
    strategy: Strategy,
    bars: pd.DataFrame,
    combos: pd.DataFrame,
    start: int,
    stop: int,
    model_outputs: pd.DataFrame | None = None,
    cache: IndicatorCache | None = None,
) -> Simulation:
    """One portfolio per combination (column j is row j of ``combos``) on bars[start:stop]."""
    cache = cache if cache is not None and cache.bars is bars else IndicatorCache.shared(bars)
    params = combos.reset_index(drop=True)
    panel = SweepPanel(strategy, params, cache, model_outputs)
    return simulate(strategy, bars, panel, start, stop, params)


def evaluate_chunk(
    strategy: Strategy,
    bars: pd.DataFrame,
    combos: pd.DataFrame,
    start: int,
    stop: int,
    per_year: float,
    model_outputs: pd.DataFrame | None = None,
    cache: IndicatorCache | None = None,
) -> pd.DataFrame:
    """The combinations with their metrics on bars[start:stop], one row each, in their order."""
    sim = simulate_chunk(strategy, bars, combos, start, stop, model_outputs, cache)
    table = column_metrics(sim, per_year)
    del sim
    # vectorbt's portfolio holds reference cycles: collect them now, or memory climbs chunk after
    # chunk until a full collection happens to run (the young generations cost ~1 ms)
    gc.collect(1)
    table.index = combos.index
    return combos.join(table)


def evaluate_combos(
    strategy: Strategy,
    bars: pd.DataFrame,
    combos: pd.DataFrame,
    start: int,
    stop: int,
    per_year: float,
    model_outputs: pd.DataFrame | None = None,
    chunk: int | None = None,
) -> pd.DataFrame:
    """All combinations in this process, chunk by chunk (the flow runs the chunks as Prefect tasks)."""
    cache = IndicatorCache(bars)
    size = chunk or chunk_size(len(bars), rows=rows_per_bar(strategy))
    parts = [
        evaluate_chunk(strategy, bars, part, start, stop, per_year, model_outputs, cache)
        for part in chunks(combos, size)
    ]
    return pd.concat(parts)

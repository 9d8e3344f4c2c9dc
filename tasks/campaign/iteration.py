"""One market of one campaign iteration: the contract's optimisation space swept with walk-forward
evaluation on the development bars, every combination scored and counted.

The space is evaluated whole when its grid has at most ``trials_per_iteration`` combinations, else
Optuna's TPE samples that many, asked and told in batches (``tasks/sweep/search.py``), maximising the
composite score. A model strategy is trained once per fold with its current model parameters (the
windows of the indicators feeding its fuzzy sets stay fixed within an iteration: five trainings, not
five per combination); its rule and risk parameters are swept on each fold's predictions. The critic
may move the model parameters between iterations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from strategy_contract.models import Strategy
from tasks.backtest import bars_per_year, rows_per_bar
from tasks.campaign.holdout import DevelopmentMarket
from tasks.campaign.request import CampaignRequest
from tasks.campaign.score import composite
from tasks.campaign.walkforward import (
    Fold,
    evaluate_folds,
    label_horizon,
    purge_bars,
    walk_forward_folds,
)
from tasks.settings import enforce_operator_rules
from tasks.sweep.evaluate import chunk_size, chunks
from tasks.sweep.groups import TrainedGroup, train_group
from tasks.sweep.search import optuna_search
from tasks.sweep.space import Space

BATCH = 64  # Optuna: combinations asked and told per batch

Train = Callable[..., TrainedGroup]


@dataclass
class MarketResult:
    """A market's evaluated combinations (one row each, with ``score``), their OOS returns (condensed,
    one column per row of ``table``), how many trials were asked, and the model trainings per fold."""

    symbol: str
    timeframe: str
    strategy: Strategy
    table: pd.DataFrame
    returns: np.ndarray
    trials: int
    folds: list[Fold]
    trained: list[dict] = field(default_factory=list)


def campaign_space(strategy: Strategy) -> Space:
    """The contract's space with its model parameters pinned at their current values (see above)."""
    space = Space.of(strategy)
    pinned = {
        key: np.array([strategy.optimization_space[key].value]) if key in space.model_keys() else axis
        for key, axis in space.axes.items()
    }
    return Space(strategy=strategy, axes=pinned)


def contract_on(strategy: Strategy, market: DevelopmentMarket) -> Strategy:
    """The contract as it runs on this market, under the operator's floors."""
    return enforce_operator_rules(strategy.on_market(market.symbol, market.timeframe))


def train_folds(
    strategy: Strategy, bars: pd.DataFrame, folds: list[Fold], space: Space, seed: int, train: Train
) -> list[TrainedGroup]:
    """One model per fold, trained on the fold's training segment only."""
    params = {k: space.axes[k][0] for k in space.model_keys()}
    horizon = label_horizon(strategy)
    return [train(strategy, bars, fold.model_bounds(horizon), params, seed) for fold in folds]


def run_market(
    strategy: Strategy,
    market: DevelopmentMarket,
    request: CampaignRequest,
    seed: int,
    train: Train = train_group,
) -> MarketResult:
    """Sweep ``strategy`` on one market's development bars with walk-forward evaluation."""
    runs = contract_on(strategy, market)
    bars = market.bars
    space = campaign_space(runs)
    folds = walk_forward_folds(len(bars), request.folds, request.walk_forward, purge_bars(runs))
    per_year = bars_per_year(bars.index)
    trained = train_folds(runs, bars, folds, space, seed, train) if runs.has_model else []
    outputs = [t.model_outputs for t in trained] if trained else None
    size = chunk_size(len(bars), rows=rows_per_bar(runs))
    kept: list[np.ndarray] = []

    def evaluate(combos: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for piece in chunks(combos, size):
            table, returns = evaluate_folds(runs, bars, piece, folds, per_year, outputs, label_horizon(runs))
            parts.append(table)
            kept.append(returns)
        table = pd.concat(parts)
        if trained:
            table["trained"] = all(t.passed_gate for t in trained)
        return table

    def scored(table: pd.DataFrame) -> pd.Series:
        return composite(table, request.gates, request.weights)

    if space.size <= request.trials_per_iteration:
        table = evaluate(space.grid(space.size))
        table.insert(0, "trial", np.arange(len(table)))
        table["score"] = scored(table)
        trials = len(table)
    else:
        table, trials = optuna_search(space, evaluate, scored, request.trials_per_iteration, BATCH, seed)
    records = [
        {"fold": i + 1, "accuracy": t.accuracy, "passed_gate": t.passed_gate, "gate": t.gate_reason}
        for i, t in enumerate(trained)
    ]
    return MarketResult(
        symbol=market.symbol,
        timeframe=market.timeframe,
        strategy=runs,
        table=table.reset_index(drop=True),
        returns=np.hstack(kept) if kept else np.zeros((0, 0), dtype=np.float32),
        trials=trials,
        folds=folds,
        trained=records,
    )

"""Walk-forward evaluation of many combinations at once, on the development bars only.

The development bars are cut into ``folds + 1`` equal blocks. Fold i tests on block i + 1 and learns from
the bars before it: all of them (anchored) or block i alone (rolling), minus a purge gap of ``purge`` bars
at the end, at least as long as the contract's longest indicator window and label horizon, so that
nothing computed for the training part looks into the test part. A combination's out-of-sample record is
its test blocks joined: blocks 1..K, one contiguous stretch of bars, the same for every combination, so
the records of all trials line up in time (the matrix CSCV needs).

Each segment is simulated on its own, flat at its start and closed at its end, with the rules' indicators
warmed up on the bars before it (causal: a rule at bar t sees bars up to t). A rule-only contract fits
nothing, so its in-sample numbers are those of the training segments; a model is trained per fold on the
training segment (its last fifth being the validation part that stops training early) and its in-sample
numbers are those of that validation part, as a research cycle judges a fitted model.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategy_contract.catalog import CATALOG
from strategy_contract.models import ForwardReturnLabel, Strategy
from tasks.backtest import column_metrics
from tasks.campaign.request import CampaignInputError
from tasks.splits import SplitBounds
from tasks.sweep.evaluate import simulate_chunk
from tasks.sweep.panel import IndicatorCache

MIN_SEGMENT = 50  # bars: a shorter training or test segment says nothing
RETURN_ROWS = 1024  # rows kept of each trial's OOS returns for CSCV (sums over equal groups of bars)


@dataclass(frozen=True)
class Fold:
    """Half-open bar ranges of one fold: where it learns (``train``) and where it is tested."""

    index: int
    train: tuple[int, int]
    test: tuple[int, int]

    def model_bounds(self, embargo: int) -> SplitBounds:
        """The fold as a training split: the first four fifths of ``train`` fit, the last fifth stops
        early, ``test`` is where its predictions are traded."""
        start, stop = self.train
        fit_end = start + (stop - start) * 4 // 5
        return SplitBounds(
            train=(start, fit_end), validation=(min(fit_end + embargo, stop), stop), test=self.test
        )


def purge_bars(strategy: Strategy) -> int:
    """The gap between a fold's training and test parts: the longest look-back an indicator of the
    contract can take (its whole-number parameters added up, at their optimisation maxima), the label
    horizon of its model, and its embargo."""
    longest = 0
    for ind in strategy.indicators:
        reach = 0
        for name, value in ind.params.items():
            if CATALOG[ind.type].params[name].type is int:
                opt = strategy.optimization_space.get(f"{ind.id}.{name}")
                reach += int(max(value, opt.max if opt is not None else value))
        longest = max(longest, reach)
    return max(longest, label_horizon(strategy), strategy.data.embargo_bars)


def label_horizon(strategy: Strategy) -> int:
    """How many bars ahead a model's labels look (0 for a rule-only contract)."""
    if not strategy.has_model:
        return 0
    label = strategy.model.label
    return label.horizon if isinstance(label, ForwardReturnLabel) else label.max_horizon


def walk_forward_folds(n_bars: int, folds: int, mode: str, purge: int) -> list[Fold]:
    """The folds over ``n_bars`` development bars; refused when a segment would be too short."""
    block = n_bars // (folds + 1)
    if block - purge < MIN_SEGMENT or block < MIN_SEGMENT:
        raise CampaignInputError(
            f"folds: {folds} folds of {n_bars} development bars give blocks of {block} bars, too few for a "
            f"purge of {purge} bars plus {MIN_SEGMENT} to learn from; use fewer folds or more data"
        )
    out = []
    for i in range(folds):
        test_stop = n_bars if i == folds - 1 else (i + 2) * block
        train_start = 0 if mode == "anchored" else i * block
        out.append(
            Fold(index=i, train=(train_start, (i + 1) * block - purge), test=((i + 1) * block, test_stop))
        )
    return out


def _returns(sim) -> np.ndarray:
    from vectorbt.returns import nb as ret_nb

    values = sim.bar_values()
    return ret_nb.returns_nb(values, np.full(values.shape[1], sim.init_cash))


def _sharpe(returns: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe ratio of each column (NaN for a flat record)."""
    mean, std = returns.mean(axis=0), returns.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, mean / std, np.nan)


def _moments(returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skewness and (plain, not excess) kurtosis of each column; 0 and 3 for a flat record."""
    centred = returns - returns.mean(axis=0)
    var = (centred**2).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(var > 0, (centred**3).mean(axis=0) / var**1.5, 0.0)
        kurt = np.where(var > 0, (centred**4).mean(axis=0) / var**2, 3.0)
    return skew, kurt


def condense(returns: np.ndarray, rows: int = RETURN_ROWS) -> np.ndarray:
    """Sums of the per-bar returns over ``rows`` equal groups of consecutive bars (float32): enough for
    CSCV's 16 blocks, small enough to keep for every trial of a long campaign."""
    if len(returns) <= rows:
        return returns.astype(np.float32)
    edges = np.linspace(0, len(returns), rows + 1).astype(int)
    return np.add.reduceat(returns, edges[:-1], axis=0).astype(np.float32)


def evaluate_folds(
    strategy: Strategy,
    bars: pd.DataFrame,
    combos: pd.DataFrame,
    folds: list[Fold],
    per_year: float,
    model_outputs: list[pd.DataFrame] | None = None,
    embargo: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Walk-forward numbers of every combination (one row each, in order) and their condensed OOS
    returns (rows x combinations). ``model_outputs[i]`` are fold i's model predictions."""
    cache = IndicatorCache.shared(bars)
    k = len(combos)
    is_sharpe = np.full((len(folds), k), np.nan)
    oos_sharpe = np.full((len(folds), k), np.nan)
    trades = np.zeros(k)
    wins = np.zeros(k)
    oos = []
    for fold in folds:
        outputs = model_outputs[fold.index] if model_outputs is not None else None
        learn = fold.model_bounds(embargo).validation if outputs is not None else fold.train
        sim = simulate_chunk(strategy, bars, combos, *learn, outputs, cache)
        is_sharpe[fold.index] = column_metrics(sim, per_year)["sharpe"].to_numpy()
        del sim
        sim = simulate_chunk(strategy, bars, combos, *fold.test, outputs, cache)
        tested = column_metrics(sim, per_year)
        oos_sharpe[fold.index] = tested["sharpe"].to_numpy()
        trades += tested["trades"].to_numpy()
        wins += (tested["win_rate"].fillna(0) * tested["trades"]).to_numpy()
        oos.append(_returns(sim))
        del sim
        gc.collect(1)  # vectorbt's portfolios hold reference cycles (see tasks/sweep/evaluate.py)
    returns = np.vstack(oos)
    curve = np.vstack([np.ones(k), np.cumprod(1.0 + returns, axis=0)])
    total = curve[-1] - 1.0
    sharpe_bar = _sharpe(returns)
    skew, kurt = _moments(returns)
    is_mean = _nan_mean(is_sharpe)
    table = pd.DataFrame(
        {
            "oos_sharpe": sharpe_bar * np.sqrt(per_year),
            "oos_return": total,
            "oos_annual_return": np.power(np.maximum(curve[-1], 1e-12), per_year / len(returns)) - 1.0,
            "oos_max_drawdown": np.max(1.0 - curve / np.maximum.accumulate(curve, axis=0), axis=0),
            "oos_trades": trades.astype(int),
            "oos_win_rate": np.where(trades > 0, wins / np.maximum(trades, 1), np.nan),
            "is_sharpe": is_mean,
            "fold_sharpe_mean": _nan_mean(oos_sharpe),
            "fold_sharpe_std": _nan_std(oos_sharpe),
            "sharpe_per_bar": sharpe_bar,
            "oos_skew": skew,
            "oos_kurtosis": kurt,
            "oos_bars": len(returns),
        },
        index=combos.index,
    )
    for fold in folds:
        table[f"fold{fold.index + 1}_sharpe"] = oos_sharpe[fold.index]
    table["oos_degradation"] = degradation(table["is_sharpe"], table["oos_sharpe"])
    return combos.join(table), condense(returns)


def _nan_mean(x: np.ndarray) -> np.ndarray:
    """Mean over folds of the defined values (NaN where a column has none)."""
    ok = np.isfinite(x)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(ok, x, 0.0).sum(axis=0) / count, np.nan)


def _nan_std(x: np.ndarray) -> np.ndarray:
    """Sample std over folds of the defined values (NaN with fewer than two)."""
    ok = np.isfinite(x)
    count = ok.sum(axis=0)
    mean = _nan_mean(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(ok, (x - mean) ** 2, 0.0).sum(axis=0) / (count - 1)
    return np.where(count > 1, np.sqrt(var), np.nan)


def degradation(in_sample: pd.Series, oos: pd.Series) -> pd.Series:
    """(in-sample Sharpe - OOS Sharpe) / in-sample Sharpe: 0 when OOS holds up, 1 when it earns nothing,
    above 1 when it loses. With no positive in-sample Sharpe there is nothing to degrade: 0 if OOS did at
    least as well, else 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (in_sample - oos) / in_sample
    fallback = np.where(oos >= in_sample, 0.0, 1.0)
    value = np.where(in_sample > 0, ratio, fallback)
    return pd.Series(np.where(np.isfinite(value), np.maximum(value, 0.0), np.nan), index=in_sample.index)

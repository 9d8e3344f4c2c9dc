"""Sampling a space too large for its grid: Optuna's TPE, asked and told in batches.

Optuna asks for a batch of B combinations, the whole batch is evaluated in one vectorized pass, and
each result is told back before the next batch: the sampler learns from every result without a
one-at-a-time evaluation. TPE (Bergstra et al., 2011) because it handles whole-number and stepped real
axes together and needs no gradient or smoothness; ``constant_liar`` makes the trials of one batch
spread out instead of crowding one promising point (Optuna's advice for parallel asks); ``multivariate``
models the parameters jointly, since a fast and a slow window only make sense together. The first
``startup`` trials are random (TPE's warm-up). Seeded: the same seed, contract and data give the same
sample, because the evaluation is deterministic and results are told in trial order.

Every trial is counted. A trial the catalog forbids (MACD fast >= slow) is told as failed; a trial that
repeats a combination already evaluated gets the same result and is counted, but the results table
holds each combination once.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from tasks.sweep.space import Space

Evaluate = Callable[[pd.DataFrame], pd.DataFrame]
Score = Callable[[pd.DataFrame], pd.Series]


def _distributions(space: Space) -> dict:
    from optuna.distributions import FloatDistribution, IntDistribution

    out = {}
    for key, axis in space.axes.items():
        step = float(axis[1] - axis[0]) if len(axis) > 1 else 1.0
        if space.strategy.param_is_whole(key):
            out[key] = IntDistribution(int(axis[0]), int(axis[-1]), step=max(1, int(round(step))))
        else:
            out[key] = FloatDistribution(float(axis[0]), float(axis[-1]), step=step)
    return out


def _snap(space: Space, params: dict) -> dict:
    """The grid value nearest to what the sampler returned (its float steps carry rounding noise)."""
    return {k: space.axes[k][int(np.argmin(np.abs(space.axes[k] - v)))] for k, v in params.items()}


def optuna_search(
    space: Space,
    evaluate: Evaluate,
    score: Score,
    n_trials: int,
    batch: int,
    seed: int,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Evaluate ``n_trials`` sampled combinations, ``batch`` at a time. Returns the table of distinct
    combinations evaluated (with the ``trial`` that first asked for it, and the ``score``) and the
    number of trials asked."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True, n_startup_trials=min(batch, 20)
        )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    distributions = _distributions(space)
    seen: dict[tuple, int] = {}  # combination -> row of `results`
    results: list[pd.DataFrame] = []
    asked = 0
    while asked < n_trials:
        trials = [study.ask(distributions) for _ in range(min(batch, n_trials - asked))]
        asked += len(trials)
        asked_combos = space.typed(pd.DataFrame([_snap(space, t.params) for t in trials], columns=space.keys))
        keys = [tuple(r) for r in asked_combos.itertuples(index=False)]
        new: dict[tuple, int] = {}  # combination -> its first trial in this batch
        for position, (key, ok) in enumerate(zip(keys, space.allowed(asked_combos), strict=True)):
            if ok and key not in seen and key not in new:
                new[key] = position
        if new:
            table = evaluate(asked_combos.iloc[list(new.values())].reset_index(drop=True))
            table.insert(0, "trial", [trials[p].number for p in new.values()])
            table["score"] = score(table)
            offset = sum(len(t) for t in results)
            seen.update({key: offset + row for row, key in enumerate(new)})
            results.append(table)
        scores = pd.concat(results, ignore_index=True)["score"] if results else pd.Series(dtype=float)
        for trial, key in zip(trials, keys, strict=True):
            row = seen.get(key)
            value = None if row is None else scores.iloc[row]
            if value is None or not np.isfinite(value):
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, float(value))
        if on_batch:
            on_batch(asked, n_trials)
    table = pd.concat(results, ignore_index=True) if results else pd.DataFrame(columns=space.keys)
    return table, asked

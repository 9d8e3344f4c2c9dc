"""Corrections for searching: the probabilistic and deflated Sharpe ratios, and the probability of
backtest overfitting by combinatorially symmetric cross-validation.

A sweep or a campaign tries many combinations and keeps the best; the best of many Sharpe ratios is
high even when no combination has an edge. These functions say how much of it survives:

- :func:`probabilistic_sharpe` (PSR; Bailey and Lopez de Prado, "The Sharpe Ratio Efficient
  Frontier", 2012): the probability that the true Sharpe ratio exceeds a benchmark, given the length of
  the record and the skewness and kurtosis of its returns.
- :func:`expected_max_sharpe` and :func:`deflated_sharpe` (DSR; Bailey and Lopez de Prado, "The
  Deflated Sharpe Ratio", Journal of Portfolio Management 40(5), 2014): the PSR against the Sharpe ratio
  the best of ``trials`` independent tries is expected to reach by luck alone, given the variance of the
  trials' Sharpe ratios.
- :func:`pbo_cscv` (Bailey, Borwein, Lopez de Prado and Zhu, "The Probability of Backtest
  Overfitting", Journal of Computational Finance 20(4), 2017; working paper 2015): how often the
  combination that is best in-sample ranks at or below the median out-of-sample, over every way of
  splitting the record's S blocks into two halves.

Sharpe ratios here are per observation (not annualised), as in the papers; kurtosis is the plain
fourth standardised moment (3 for a normal distribution), not the excess.
"""

from __future__ import annotations

import math
from itertools import combinations
from statistics import NormalDist

import numpy as np
import pandas as pd

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def probabilistic_sharpe(
    sharpe: float, benchmark: float, observations: int, skew: float, kurtosis: float
) -> float:
    """P(true Sharpe > ``benchmark``) for an observed per-observation ``sharpe`` over ``observations``
    returns with this skewness and kurtosis (PSR, eq. 11 of the DSR paper)."""
    if observations < 2:
        raise ValueError(f"observations: {observations}; the PSR needs at least 2")
    spread = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 0:
        raise ValueError(f"skew {skew} and kurtosis {kurtosis} leave no variance for a Sharpe of {sharpe}")
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread))


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """The expected largest of ``trials`` Sharpe ratios drawn with this variance around a true Sharpe of
    zero (the DSR paper's eq. for SR0, from the expected maximum of independent normals)."""
    if trials < 1:
        raise ValueError(f"trials: {trials}; at least one trial was run")
    if trials == 1:
        return 0.0
    spread = math.sqrt(max(sharpe_variance, 0.0))
    first = _NORMAL.inv_cdf(1.0 - 1.0 / trials)
    second = _NORMAL.inv_cdf(1.0 - 1.0 / (trials * math.e))
    return spread * ((1.0 - EULER_GAMMA) * first + EULER_GAMMA * second)


def deflated_sharpe(
    sharpe: float, observations: int, skew: float, kurtosis: float, trials: int, sharpe_variance: float
) -> float:
    """DSR: the PSR of the selected ``sharpe`` against :func:`expected_max_sharpe` of the search that
    found it."""
    benchmark = expected_max_sharpe(trials, sharpe_variance)
    return probabilistic_sharpe(sharpe, benchmark, observations, skew, kurtosis)


def _sharpe_from_moments(total: np.ndarray, squares: np.ndarray, count: int) -> np.ndarray:
    """Each column's mean / std (ddof=1) from its sum and sum of squares over ``count`` periods."""
    mean = total / count
    variance = np.maximum(squares - count * mean**2, 0.0) / (count - 1)
    std = np.sqrt(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, mean / std, 0.0)


def pbo_cscv(returns: pd.DataFrame | np.ndarray, blocks: int = 16) -> dict:
    """Probability of backtest overfitting of choosing the best column of ``returns`` (rows: periods in
    time order, columns: the trials) by its Sharpe ratio.

    The rows are cut into ``blocks`` (S, even) contiguous blocks of equal length (the remainder rows at
    the end are dropped). For each of the C(S, S/2) choices of S/2 blocks as the in-sample part, the best
    in-sample column's rank among all columns on the other half gives its relative rank
    w = rank / (N + 1) and the logit ln(w / (1 - w)). PBO is the share of logits <= 0: the in-sample
    winner did no better than the median out of sample. Ties take their average rank."""
    matrix = np.asarray(returns, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError("returns: a matrix of periods x trials with at least two trials")
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks: {blocks}; CSCV needs an even number of blocks, at least 2")
    size = matrix.shape[0] // blocks
    if size < 2:
        raise ValueError(f"returns: {matrix.shape[0]} periods cannot make {blocks} blocks of 2 or more")
    # each block's sums and sums of squares: a half's Sharpe ratios come from adding S/2 of them
    cut = matrix[: blocks * size].reshape(blocks, size, -1)
    sums, squares = cut.sum(axis=1), (cut**2).sum(axis=1)
    trials, half = matrix.shape[1], size * blocks // 2
    logits = []
    for chosen in combinations(range(blocks), blocks // 2):
        inside = np.zeros(blocks, dtype=bool)
        inside[list(chosen)] = True
        in_sample = _sharpe_from_moments(sums[inside].sum(0), squares[inside].sum(0), half)
        oos = _sharpe_from_moments(sums[~inside].sum(0), squares[~inside].sum(0), half)
        best = int(np.argmax(in_sample))
        rank = np.sum(oos < oos[best]) + (np.sum(oos == oos[best]) + 1) / 2  # average rank of ties
        relative = rank / (trials + 1)
        logits.append(math.log(relative / (1.0 - relative)))
    logits_array = np.array(logits)
    return {
        "pbo": float(np.mean(logits_array <= 0)),
        "splits": len(logits),
        "blocks": blocks,
        "trials": trials,
        "logits": logits_array,
    }

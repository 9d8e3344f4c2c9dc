"""The deflated Sharpe ratio against the paper's worked example, and PBO on constructions whose answer
is known (an honest winner, a winner that always fails out of sample, noise)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.evaluate.overfitting import deflated_sharpe, expected_max_sharpe, pbo_cscv, probabilistic_sharpe


def test_deflated_sharpe_reproduces_the_papers_numerical_example():
    """Bailey and Lopez de Prado (2014), section 'A numerical example': 100 trials whose annualised
    Sharpe ratios have variance 1/2, the best at 2.5 annualised over 1,250 daily returns with skewness -3
    and kurtosis 10: SR0 = 0.1132 a day and DSR = 0.9004."""
    daily_variance = 0.5 / 250
    assert expected_max_sharpe(100, daily_variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe(
        2.5 / math.sqrt(250), 1250, skew=-3.0, kurtosis=10.0, trials=100, sharpe_variance=daily_variance
    )
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_more_trials_deflate_more_and_one_trial_is_the_plain_psr():
    sharpe, n = 0.1, 500
    psr = probabilistic_sharpe(sharpe, 0.0, n, skew=0.0, kurtosis=3.0)
    assert deflated_sharpe(sharpe, n, 0.0, 3.0, trials=1, sharpe_variance=0.01) == psr
    # with normal returns and a zero benchmark, PSR = Phi(SR sqrt(n - 1) / sqrt(1 + SR^2 / 2))
    assert psr == pytest.approx(0.5 * (1 + math.erf(0.1 * math.sqrt(499) / math.sqrt(1.005) / math.sqrt(2))))
    values = [deflated_sharpe(sharpe, n, 0.0, 3.0, trials=t, sharpe_variance=0.002) for t in (10, 100, 1000)]
    assert values[0] > values[1] > values[2]


def test_an_honest_winner_has_no_overfitting():
    """One trial earns more than the others in every block: it wins in-sample and out of sample."""
    rng = np.random.default_rng(1)
    returns = rng.normal(0, 0.01, size=(800, 20))
    returns[:, 7] += 0.01
    result = pbo_cscv(returns, blocks=8)
    assert (result["splits"], result["pbo"]) == (70, 0.0)


def test_a_winner_that_always_fails_out_of_sample_is_overfit():
    """Two trials that take turns: each is best in the blocks where the other is worst, so whichever
    half is in-sample, its winner is the loser of the other half."""
    up, down = np.tile([0.02, 0.0], 50), np.tile([-0.02, 0.0], 50)
    returns = np.column_stack([np.r_[up, down], np.r_[down, up]])
    result = pbo_cscv(returns, blocks=2)
    assert (result["splits"], result["pbo"]) == (2, 1.0)


def test_choosing_among_noise_is_a_coin_flip():
    """With no edge anywhere, the in-sample winner lands above or below the out-of-sample median about
    equally often: PBO averages near 1/2 (one draw varies a lot, its splits share blocks)."""
    rng = np.random.default_rng(7)
    pbos = [pbo_cscv(rng.normal(0, 0.01, size=(400, 30)), blocks=8)["pbo"] for _ in range(20)]
    assert 0.4 < np.mean(pbos) < 0.6, pbos


@pytest.mark.parametrize(
    ("shape", "blocks", "message"),
    [
        ((100, 1), 4, "at least two trials"),
        ((100, 5), 3, "even number of blocks"),
        ((10, 5), 8, "cannot make 8 blocks"),
    ],
)
def test_bad_input_names_the_argument(shape, blocks, message):
    with pytest.raises(ValueError, match=message):
        pbo_cscv(np.zeros(shape), blocks=blocks)

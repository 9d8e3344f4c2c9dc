"""Synthetic markets for tests: bars whose edge is known, written where ``tasks.data`` reads them.

Two kinds of market, both on the same noise model so that a test can tell what a strategy found:

- :func:`null_bars`: no edge. Log returns follow a GARCH(1, 1) with Student-t shocks (df = 4, scaled
  to unit variance) and zero drift: volatility clustering and fat tails as in real prices, but
  nothing a rule can predict. A strategy's Sharpe on it is scattered around 0 (minus costs).
- :func:`trend_bars`: a planted edge. The same noise (the same seed gives the same shocks) plus a
  zigzag drift: legs that alternate up and down, ``persistence`` bars long on average (x U[0.5, 1.5]),
  each with a drift of about ``strength`` x the per-bar volatility, taking the trend part of the log
  price to a target on the other side of 0 (``trend_drift``). The trend part stays in a band, so
  buy-and-hold gains nothing from it over many legs; a trend follower does, and a long-only one (the
  engine trades one direction, see ``tasks/backtest/portfolio.py``) earns in the up legs.

The noise: ``r_t = mu_t + sqrt(h_t) * z_t`` with ``z_t`` Student-t(4) / sqrt(2) (unit variance) and

    h_t = omega + alpha * (r_{t-1} - mu_{t-1})^2 + beta * h_{t-1},
    alpha = 0.10, beta = 0.88 (alpha + beta = 0.98 < 1: stationary; half-life of a shock ~34 bars),
    omega = vol^2 * (1 - alpha - beta), so the unconditional per-bar volatility is ``vol``:
    0.1% a bar for "1h" (FX-like hourly bars), 1% for "1d"; other timeframes scale 0.1% by
    sqrt(hours).

(alpha 0.10 rather than 0.08: with t(4) shocks a few huge moves dilute the sample autocorrelation of
squared returns, which at 0.08 came out at 0.050 for seed 0; at 0.10 it is 0.06-0.26 on seeds 0-9.)

Calibration (measured with the shipped ``strategies/ema_cross_atr.yaml`` as EURUSD 1h, fx costs, on
6000 hourly bars; see tests/test_synthetic_markets.py): on ``trend_bars`` the EMA crossover's
annualised Sharpe for the window pairs 10/50, 12/48, 20/100 on seeds 0-2 is 3.4-8.5 over all bars and
2.1-8.6 over the later 20% (buy-and-hold over all bars: -0.9 to 1.4). On ``null_bars`` it is 0.99,
-1.03, 0.11 (12/48, seeds 0-2) and -0.9 on average over seeds and ten pairs: the cost drag; without
costs it averages 0.1 over 20 seeds x 10 pairs. Mind the noise: one Sharpe over 6000 hourly bars
(0.7 years) has a standard error of ~1.2, over the later 20% alone ~2.7 (the null market shows 4+
there on seed 2). Daily bars with the same defaults carry the same edge per bar, which annualises to
a Sharpe of about 1 (sqrt(261) instead of sqrt(8766) bars a year).

Bars: the close follows the log returns; open = previous close times a small gap (sd 0.05 of the
bar's volatility; the first open is the start price); high and low reach beyond max/min(open, close)
by a half-normal amount of the bar's conditional volatility; volume is positive, lognormal and larger
on big moves. Timestamps are UTC: consecutive bars for intraday timeframes ("1h": every hour,
weekends included), business days for "1d".

:func:`write_market` saves bars as ``<SYMBOL>_<timeframe>.parquet`` in a folder, with a
``provenance.json`` entry that names this generator; point ``$STRATLAB_DATA_DIR`` at the folder and
``tasks.data.load_market`` reads them. Use symbols whose costs the operator settings know: "EURUSD"
(fx: 1 bp fees + 0.5 bp slippage per fill) for hourly bars, "SPX" (indices: 5 + 2 bp) for daily ones;
any other name counts as the costliest class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.backtest import timeframe_delta
from tasks.data import BAR_COLUMNS, PROVENANCE_FILE, file_sha256, validate_bars

# GARCH(1, 1) of the shocks (see the module docstring)
GARCH_ALPHA = 0.10
GARCH_BETA = 0.88
T_DF = 4
START_PRICE = 100.0
GAP_SD = 0.05  # sd of the open's gap from the previous close, in units of the bar's volatility
RANGE_SD = 0.6  # sd of the (half-normal) wick beyond the body, in units of the bar's volatility
PER_BAR_VOL = {"1h": 0.001, "1d": 0.01}

# The planted trend (see trend_bars)
TREND_PERSISTENCE = 150.0  # mean length of a trend leg, in bars
TREND_STRENGTH = 0.35  # typical |drift| of a leg, in units of the per-bar volatility


def per_bar_vol(timeframe: str) -> float:
    """Unconditional volatility of one bar's log return: 0.1% for "1h", 1% for "1d", else 0.1% scaled
    by sqrt(hours)."""
    if timeframe in PER_BAR_VOL:
        return PER_BAR_VOL[timeframe]
    return PER_BAR_VOL["1h"] * float(np.sqrt(timeframe_delta(timeframe).total_seconds() / 3600))


def bar_index(n: int, timeframe: str, start: str) -> pd.DatetimeIndex:
    """n UTC timestamps from ``start``: business days for daily bars, consecutive bars otherwise."""
    if timeframe.endswith("d"):
        index = pd.bdate_range(start=start, periods=n, freq=f"{int(timeframe[:-1])}B", tz="UTC")
    else:
        index = pd.date_range(start=start, periods=n, freq=timeframe_delta(timeframe), tz="UTC")
    return index.as_unit("ns").rename("time")


def _garch(rng: np.random.Generator, n: int, vol: float) -> tuple[np.ndarray, np.ndarray]:
    """Shocks eps_t = sqrt(h_t) z_t of a GARCH(1, 1) with unit-variance Student-t(4) z_t, and sqrt(h_t)."""
    z = rng.standard_t(T_DF, size=n) / np.sqrt(T_DF / (T_DF - 2))
    omega = vol**2 * (1 - GARCH_ALPHA - GARCH_BETA)
    h = np.empty(n)
    eps = np.empty(n)
    h_prev, eps_prev = vol**2, 0.0
    for t in range(n):
        h_prev = omega + GARCH_ALPHA * eps_prev**2 + GARCH_BETA * h_prev
        h[t] = h_prev
        eps_prev = np.sqrt(h_prev) * z[t]
        eps[t] = eps_prev
    return eps, np.sqrt(h)


def _bars(rng: np.random.Generator, log_returns: np.ndarray, sigma: np.ndarray, index) -> pd.DataFrame:
    n = len(log_returns)
    close = START_PRICE * np.exp(np.cumsum(log_returns))
    prev_close = np.concatenate([[START_PRICE], close[:-1]])
    gap = rng.normal(0.0, GAP_SD, size=n) * sigma
    gap[0] = 0.0
    open_ = prev_close * np.exp(gap)
    body_hi, body_lo = np.maximum(open_, close), np.minimum(open_, close)
    high = body_hi * np.exp(np.abs(rng.normal(0.0, RANGE_SD, size=n)) * sigma)
    low = body_lo * np.exp(-np.abs(rng.normal(0.0, RANGE_SD, size=n)) * sigma)
    size = np.abs(log_returns) / sigma
    volume = 1e6 * np.exp(rng.normal(0.0, 0.3, size=n)) * (1.0 + size)
    bars = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )
    return bars[list(BAR_COLUMNS)]


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent streams: the shocks, the bar shapes, the trend regimes (so a trend market and the
    null market of one seed share their shocks and differ only by the planted drift)."""
    shocks, shapes, regimes = (np.random.default_rng([seed, k]) for k in range(3))
    return shocks, shapes, regimes


def null_bars(seed: int, n: int = 6000, timeframe: str = "1h", start: str = "2015-01-01") -> pd.DataFrame:
    """A market with no edge: log returns from a GARCH(1,1) with Student-t (df=4) shocks: volatility
    clustering and fat tails, zero drift. Deterministic per seed."""
    shocks, shapes, _ = _rngs(seed)
    eps, sigma = _garch(shocks, n, per_bar_vol(timeframe))
    return _bars(shapes, eps, sigma, bar_index(n, timeframe, start))


def trend_drift(
    rng: np.random.Generator, n: int, vol: float, persistence: float, strength: float
) -> np.ndarray:
    """Per-bar drift of log returns: a zigzag trend. Legs alternate up and down (the first at random);
    a leg lasts ``persistence`` bars times a uniform factor in [0.5, 1.5] and takes the trend part of
    the log price from where it is to a target of alternating sign, ``persistence * strength * vol / 2``
    times a uniform factor in [0.5, 1.5] away from 0. So a leg's drift is about ``strength * vol`` a
    bar, and the trend part stays within a band around 0: buy-and-hold gains nothing from it over
    many legs (a free random walk of drifts would hand buy-and-hold a large, seed-dependent edge)."""
    if persistence < 2:
        raise ValueError(f"persistence is the mean length of a trend leg in bars, >= 2; got {persistence}")
    amplitude = persistence * strength * vol / 2
    drift = np.empty(n)
    sign = rng.choice([-1.0, 1.0])
    level, t = 0.0, 0
    while t < n:
        length = max(2, round(persistence * rng.uniform(0.5, 1.5)))
        target = sign * amplitude * rng.uniform(0.5, 1.5)
        drift[t : t + length] = (target - level) / length
        level, t, sign = target, t + length, -sign
    return drift


def trend_bars(
    seed: int,
    n: int = 6000,
    timeframe: str = "1h",
    start: str = "2015-01-01",
    persistence: float = TREND_PERSISTENCE,
    strength: float = TREND_STRENGTH,
) -> pd.DataFrame:
    """A planted edge: the null market's shocks (same seed, same shocks) plus a zigzag drift whose legs
    alternate up and down (``trend_drift``: ``persistence`` = mean leg length in bars, ``strength`` =
    typical drift a bar in units of the per-bar volatility), persistent enough that the EMA crossover
    of ``strategies/ema_cross_atr.yaml`` earns an annualised Sharpe above 1.5 after fx costs on hourly
    bars (see the module docstring), while buy-and-hold earns next to nothing."""
    shocks, shapes, regimes = _rngs(seed)
    vol = per_bar_vol(timeframe)
    eps, sigma = _garch(shocks, n, vol)
    drift = trend_drift(regimes, n, vol, persistence, strength)
    return _bars(shapes, drift + eps, sigma, bar_index(n, timeframe, start))


def write_market(folder: Path, symbol: str, timeframe: str, bars: pd.DataFrame) -> Path:
    """Write bars as ``<folder>/<SYMBOL>_<timeframe>.parquet`` (validated first), add or replace its
    entry in the folder's provenance.json (the loader's record of where a file came from), and return
    the file. Point ``$STRATLAB_DATA_DIR`` at ``folder`` for ``tasks.data`` to read it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{symbol.upper()}_{timeframe}.parquet"
    path = folder / name
    clean = validate_bars(bars, name)
    clean.to_parquet(path, index=True)
    provenance = folder / PROVENANCE_FILE
    entries = json.loads(provenance.read_text(encoding="utf-8")) if provenance.is_file() else []
    entries = [e for e in entries if e.get("file") != name]
    entries.append(
        {
            "symbol": symbol.upper(),
            "timeframe": timeframe,
            "file": name,
            "source_package": "synthetic_markets",
            "package_version": "test",
            "license": "none (generated)",
            "source_file": "tests/synthetic_markets.py",
            "start": clean.index[0].isoformat(),
            "end": clean.index[-1].isoformat(),
            "rows": len(clean),
            "sha256": file_sha256(path),
            "notes": "Synthetic bars for tests (GARCH(1,1) Student-t noise; trend markets add a drift "
            "in regimes); not market data.",
        }
    )
    entries.sort(key=lambda e: str(e["file"]))
    provenance.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    return path

"""What the path rows cost a sweep: ``strategies/ema_cross_atr.yaml`` (ATR stop and take-profit, so four
vectorbt rows a bar since the engine follows the path inside a bar) on the 6,225 EURUSD 1h bars of 2017,
1,000 random combinations (seed 0), best of 3 in-process after a warm-up. Run it on two checkouts to
compare: ``.venv/bin/python bench/bench_path_rows.py``."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from strategy_contract import load_strategy
from tasks.backtest.metrics import bars_per_year
from tasks.data import load_bars
from tasks.sweep.evaluate import evaluate_combos


def main(n: int = 1000) -> None:
    strategy = load_strategy("strategies/ema_cross_atr.yaml")
    bars = load_bars("EURUSD", "1h")
    per_year = bars_per_year(bars.index)
    rng = np.random.default_rng(0)
    combos = pd.DataFrame(
        {
            "ema_fast.window": rng.integers(5, 31, n),
            "ema_slow.window": rng.integers(15, 61, n) * 2,
            "risk_model.stop_loss.multiple": rng.integers(4, 17, n) * 0.25,
            "risk_model.take_profit.multiple": rng.integers(4, 25, n) * 0.25,
        }
    )
    evaluate_combos(strategy, bars, combos.head(20), 0, len(bars), per_year)  # numba warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        evaluate_combos(strategy, bars, combos, 0, len(bars), per_year)
        best = min(best, time.perf_counter() - start)
    print(f"{n} combinations x {len(bars)} bars: {best:.2f} s (best of 3)")


if __name__ == "__main__":
    main()

"""The offline designer: valid designs, reproducible by seed, steered by past selection-part results."""

from __future__ import annotations

from collections import Counter

from strategy_contract import Strategy
from tasks.design import design_offline, family_of
from tasks.storage import PastCycle


def test_designs_are_valid_and_reproducible():
    first = design_offline(5, [], "EURUSD", "1h", volatility=0.0006)
    again = design_offline(5, [], "EURUSD", "1h", volatility=0.0006)
    assert isinstance(first, Strategy) and first == again
    assert first.symbol == "EURUSD" and first.strategy_id.split("_")[-2] == "eurusd"


def test_an_empty_lab_starts_neuro_fuzzy_then_explores_every_family():
    first = design_offline(0, [], "SPX", "1d", 0.006)
    assert family_of(first) == "neuro_fuzzy"
    history = [
        (
            PastCycle(
                strategy_id=first.strategy_id, family="neuro_fuzzy", status="completed", selection_sharpe=0.3
            ),
            first,
        )
    ]
    families = Counter(family_of(design_offline(seed, history, "SPX", "1d", 0.006)) for seed in range(30))
    assert set(families) == {"trend_cross", "mean_reversion", "neuro_fuzzy"}


def test_history_steers_the_search():
    seen = [
        (
            PastCycle(strategy_id="x_seen", family="neuro_fuzzy", status="failed"),
            design_offline(0, [], "SPX", "1d", 0.006),
        )
    ]
    fresh = [design_offline(seed, seen, "SPX", "1d", 0.006) for seed in range(40)]
    good = next(s for s in fresh if family_of(s) == "trend_cross")
    bad = [s for s in fresh if family_of(s) != "trend_cross"][:4]
    history = [
        (
            PastCycle(
                strategy_id=good.strategy_id, family="trend_cross", status="completed", selection_sharpe=2.5
            ),
            good,
        )
    ]
    history += [
        (
            PastCycle(
                strategy_id=s.strategy_id, family=family_of(s), status="failed", reason="Backtest gate failed"
            ),
            s,
        )
        for s in bad
    ]

    designs = [design_offline(seed, history, "SPX", "1d", 0.006) for seed in range(40)]
    families = Counter(family_of(d) for d in designs)
    assert families["trend_cross"] > 40 * 0.6  # the family that worked is chosen most
    refined = [d for d in designs if f"refined from {good.strategy_id}" in d.thesis]
    assert refined, "some designs refine the best past strategy"
    assert all(d.version == good.version + 1 for d in refined)
    assert all(d.strategy_id != good.strategy_id for d in refined)

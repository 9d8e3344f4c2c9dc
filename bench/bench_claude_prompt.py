"""Tokens and dollars of a Claude design and assessment, measured against the local Messages API server
of the tests (tests/fake_anthropic.py: one token per 4 characters, prompt caching as the API does it).

A typical design is 4 requests: list symbols and indicators, recent strategies, validate, save.
It runs with an empty history and with 10 past strategies, then one assessment.

    .venv/bin/python bench/bench_claude_prompt.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import yaml  # noqa: E402
from fake_anthropic import FakeAnthropic, tool_use  # noqa: E402

from strategy_contract import save_strategy  # noqa: E402
from strategy_contract.io import atomic_write_json  # noqa: E402
from tasks.data import list_datasets  # noqa: E402
from tasks.design import design_offline  # noqa: E402
from tasks.llm.budget import BudgetLedger  # noqa: E402
from tasks.llm.design import DesignTools, design_with_claude  # noqa: E402
from tasks.llm.pricing import DEFAULT_MODEL  # noqa: E402
from tasks.llm.session import ClaudeSession  # noqa: E402
from tasks.storage import load_history  # noqa: E402

CONTRACT = {
    **yaml.safe_load((REPO / "strategies/fuzzy_momentum_mlp.yaml").read_text()),
    "strategy_id": "bench_mlp",
}


def fake_history(folder: Path, n: int) -> None:
    """n past cycles with long learnings, as the flow writes them."""
    for seed in range(n):
        strategy = design_offline(seed, [], "SPX", "1d", 0.006).model_copy(
            update={"strategy_id": f"past_{seed:02d}"}
        )
        run = folder / strategy.strategy_id / f"20261101T000000Z-{seed:08d}"
        save_strategy(strategy, folder)
        save_strategy(strategy, run)
        (run / f"{strategy.strategy_id}.yaml").rename(run / "contract.yaml")
        atomic_write_json(
            run / "cycle.json",
            {
                "history": {
                    "strategy_id": strategy.strategy_id,
                    "family": "neuro_fuzzy",
                    "status": "completed",
                    "selection_part": "validation",
                    "selection_sharpe": 0.4,
                    "selection_return": 0.12,
                    "selection_trades": 31,
                    "verdict": "iterate",
                    "started_at": f"2026-11-{seed + 1:02d}T00:00:00+00:00",
                    "learnings": [
                        "A learning of typical length that tells the next designer what to try and why. " * 3
                    ],
                }
            },
        )


def measure(history_size: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic() as fake:
        folder = Path(tmp)
        fake_history(folder, history_size)
        os.environ.update(
            ANTHROPIC_BASE_URL=fake.url, ANTHROPIC_API_KEY="sk-bench", STRATLAB_LEDGER=str(folder / "l.db")
        )
        fake.queue(
            tool_use("list_symbols", {}, ("list_indicators", {})),
            tool_use("recent_strategies", {"limit": 10}),
            tool_use("validate_contract", CONTRACT),
            tool_use("save_contract", CONTRACT),
        )
        session = ClaudeSession(DEFAULT_MODEL, BudgetLedger(limit_usd=100))
        tools = DesignTools(list_datasets(), load_history(folder).entries, set(), "SPX", "1d")
        design_with_claude(session, tools)
        return [c.model_dump() for c in session.calls]


def measure_assessment() -> dict:
    """One assessment of a real backtest (the pilot on SPX daily)."""
    from strategy_contract import load_strategy
    from tasks.backtest import run_backtest
    from tasks.data import load_bars
    from tasks.features import feature_frame
    from tasks.llm.assess import assess_with_claude
    from tasks.splits import split_bounds

    strategy = load_strategy(REPO / "strategies/ema_cross_atr.yaml")
    bars = load_bars(strategy.symbol, strategy.timeframe)
    bounds = split_bounds(len(bars), strategy.data)
    report = run_backtest(strategy, bars, feature_frame(bars, strategy), bounds)
    answer = {
        "verdict": "reject",
        "summary": "No edge on the selection bars: Sharpe below zero, few trades.",
        "strengths": ["low drawdown"],
        "weaknesses": ["train+validation Sharpe -0.4", "13 trades"],
        "suggestions": ["longer history"],
        "learnings": ["EMA crosses on hourly EURUSD had no edge on 2017 train+validation bars"],
    }
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic() as fake:
        os.environ.update(
            ANTHROPIC_BASE_URL=fake.url, ANTHROPIC_API_KEY="sk-bench", STRATLAB_LEDGER=f"{tmp}/l.db"
        )
        fake.queue(tool_use("submit_assessment", answer))
        session = ClaudeSession(DEFAULT_MODEL, BudgetLedger(limit_usd=100))
        assess_with_claude(session, strategy, report, None)
        return session.calls[0].model_dump()


def main() -> None:
    print(
        f"model {DEFAULT_MODEL}; tokens per request of one design (uncached input / cache write / cache read / output)"
    )
    for size in (0, 10):
        calls = measure(size)
        for i, c in enumerate(calls, 1):
            print(
                f"  history {size:>2}  request {i}: {c['input_tokens']:>6} / {c['cache_write_tokens']:>6} / "
                f"{c['cache_read_tokens']:>6} / {c['output_tokens']:>5}   ${c['cost_usd']:.4f}"
            )
        total = {
            k: sum(c[k] for c in calls)
            for k in ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens", "cost_usd")
        }
        print(f"  history {size:>2}  design total: {json.dumps({k: round(v, 4) for k, v in total.items()})}")
    c = measure_assessment()
    print(
        f"  assessment (cold cache): {c['input_tokens']} / {c['cache_write_tokens']} / {c['cache_read_tokens']} / "
        f"{c['output_tokens']}   ${c['cost_usd']:.4f}"
    )


if __name__ == "__main__":
    main()

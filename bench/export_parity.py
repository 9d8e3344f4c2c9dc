"""The README's export parity table: every parity case of the tests (``tests/test_export.py``: one strategy
per catalog indicator, the pilot on two markets, short, percent and mixed stops, a trailing stop; and the
shipped neuro-fuzzy contract trained for 5 epochs with seed 42, as ``tests/test_export_neural.py`` trains
it), each exported to Pine (run by PyneCore) and C# (run by the stand-in's runner under mono), with the
engine's trades and how many each target matched. Prints a markdown table and each mismatch's reason.

    .venv/bin/python bench/export_parity.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import STRATEGIES  # noqa: E402
from test_export import ALL, MORE_MARKETS, one_per_indicator  # noqa: E402

from strategy_contract import parse_strategy  # noqa: E402
from tasks.data import load_bars  # noqa: E402
from tasks.export.parity import ctrader_parity, pine_parity  # noqa: E402
from tasks.features import feature_frame  # noqa: E402
from tasks.splits import split_bounds  # noqa: E402
from tasks.train import train_model  # noqa: E402


def cases() -> list[tuple[str, dict, str, str]]:
    """(label, contract, symbol, timeframe), in the README's order."""
    spx = [(name, "SPX", "1d") for name in ["pilot", *sorted(one_per_indicator()), "trailing"]]
    return [(f"{name} {symbol} {tf}", ALL[name], symbol, tf) for name, symbol, tf in [*spx, *MORE_MARKETS]]


def neuro_fuzzy() -> tuple[dict, bytes]:
    contract = yaml.safe_load((STRATEGIES / "fuzzy_momentum_mlp.yaml").read_text())
    contract["model"]["epochs"] = 5
    strategy = parse_strategy(contract, "nf")
    bars = load_bars("SPX", "1d")
    frame = feature_frame(bars, strategy)
    outcome = train_model(strategy, bars, frame, split_bounds(len(bars), strategy.data), seed=42)
    return contract, outcome.checkpoint


def main() -> None:
    rows = [(label, contract, symbol, tf, None) for label, contract, symbol, tf in cases()]
    contract, checkpoint = neuro_fuzzy()
    rows.append(("fuzzy_momentum_mlp SPX 1d", contract, "SPX", "1d", checkpoint))
    print("| case | engine trades | Pine identical | C# identical | seconds |")
    print("|---|---|---|---|---|")
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (label, contract, symbol, tf, ckpt) in enumerate(rows):
            strategy = parse_strategy({**contract, "markets": [symbol], "timeframes": [tf]}, label)
            bars = load_bars(symbol, tf)
            started = time.perf_counter()
            pine = pine_parity(strategy, bars, Path(tmp) / f"{k}-pine", checkpoint=ckpt)
            cs = ctrader_parity(strategy, bars, Path(tmp) / f"{k}-cs", checkpoint=ckpt)
            seconds = time.perf_counter() - started
            print(f"| {label} | {pine.engine_trades} | {pine.identical} | {cs.identical} | {seconds:.1f} |")
            for target, parity in (("pine", pine), ("ctrader", cs)):
                notes += [f"{label} {target}: {m['reason']}" for m in parity.mismatches]
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()

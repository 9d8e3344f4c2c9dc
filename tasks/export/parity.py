"""Parity of an export with the engine: both run the same contract on the same bars, and their closed
trades are lined up (``tasks/export/pyne.py``). Slippage is set to 0 on both sides for the comparison:
Pine counts it in whole ticks, the engine as a fraction of the price, so with it prices could not agree
to the tick (the export's diagnostics say how its slippage was converted).

A neuro-fuzzy strategy needs its trained checkpoint: the engine trades on the network's own outputs
(``tasks.export.model.engine_outputs``, joined to the feature frame as ``model.*`` as the research cycle
does), and the export gets the same weights inlined (``inline_model``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from strategy_contract.models import Strategy
from tasks.backtest.metrics import trade_list
from tasks.backtest.portfolio import simulate
from tasks.export.common import tick_size
from tasks.export.model import InlinedModel, engine_outputs, inline_model
from tasks.export.pine import export_pine
from tasks.export.pyne import Parity, compare_trades, run_pine
from tasks.features import feature_frame


def without_slippage(strategy: Strategy) -> Strategy:
    return strategy.model_copy(
        update={"risk_model": strategy.risk_model.model_copy(update={"slippage": 0.0})}
    )


def engine_trades(
    strategy: Strategy, bars: pd.DataFrame, model_outputs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The engine's closed trades of ``strategy`` over all of ``bars``. A strategy with a model needs
    ``model_outputs`` (prob_down, prob_flat, prob_up, signal per bar: ``engine_outputs`` or the training
    outcome's predictions), which its rules read as ``model.*``."""
    frame = feature_frame(bars, strategy)
    if strategy.has_model:
        if model_outputs is None:
            raise ValueError(
                "model: the engine's trades of a neuro-fuzzy strategy need its model's outputs "
                "(tasks.export.model.engine_outputs of the trained checkpoint)"
            )
        frame = frame.join(model_outputs.add_prefix("model."))
    sim = simulate(strategy, bars, frame, 0, len(bars))
    rows = [
        {
            "entry_time": pd.Timestamp(t.entry_time),
            "exit_time": pd.Timestamp(t.exit_time),
            "direction": t.direction,
            "entry_price": t.entry_price,
            "exit_price": t.exit_price,
            "size": t.size,
            "pnl": t.pnl,
        }
        for t in trade_list(sim)
    ]
    return pd.DataFrame(
        rows, columns=["entry_time", "exit_time", "direction", "entry_price", "exit_price", "size", "pnl"]
    )


def _with_model(
    strategy: Strategy, bars: pd.DataFrame, checkpoint: bytes | None
) -> tuple[InlinedModel | None, pd.DataFrame | None]:
    """The inlined model and the engine's outputs of a neuro-fuzzy strategy (None, None otherwise)."""
    if checkpoint is None or not strategy.has_model:
        return None, None
    return inline_model(strategy, checkpoint), engine_outputs(
        strategy, checkpoint, feature_frame(bars, strategy)
    )


def pine_parity(
    strategy: Strategy, bars: pd.DataFrame, folder: Path, checkpoint: bytes | None = None
) -> Parity:
    """Run the engine and the Pine export (through PyneCore) on ``bars`` and compare their trades.
    ``checkpoint`` (the trained Lightning checkpoint) is needed for a strategy with a model: the engine
    trades on its outputs and the export inlines its weights."""
    plain = without_slippage(strategy)
    model, outputs = _with_model(plain, bars, checkpoint)
    script = export_pine(plain, model=model).text
    tick = tick_size(strategy.symbol)
    return compare_trades(
        engine_trades(plain, bars, outputs), run_pine(script, bars, strategy.symbol, tick, folder), tick
    )


def ctrader_parity(
    strategy: Strategy, bars: pd.DataFrame, folder: Path, checkpoint: bytes | None = None
) -> Parity:
    """Run the engine and the C# export (compiled by mcs, played by the stand-in's runner under mono) on
    ``bars`` and compare their trades; ``checkpoint`` as for :func:`pine_parity`."""
    from tasks.export.ctrader import export_ctrader
    from tasks.export.mono import run_csharp

    plain = without_slippage(strategy)
    model, outputs = _with_model(plain, bars, checkpoint)
    tick = tick_size(strategy.symbol)
    trades = run_csharp(
        export_ctrader(plain, model=model).text,
        bars,
        strategy.symbol,
        tick,
        plain.risk_model.init_cash,
        folder,
    )
    return compare_trades(engine_trades(plain, bars, outputs), trades, tick)

"""The optimisation space of a contract as a grid: its axes, its size, its combinations.

A combination is one row of a DataFrame whose columns are the enabled keys of ``optimization_space``
(``ema_fast.window``, ``risk_model.stop_loss.multiple``). Values are taken from ``min`` to ``max`` in
steps of ``step``; whole-number parameters (indicator windows) stay whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategy_contract.catalog import CATALOG
from strategy_contract.models import Strategy


class SweepInputError(ValueError):
    """A sweep request that cannot run; the message names the field and the reason."""


@dataclass(frozen=True)
class Space:
    """The enabled axes of a contract's optimisation space."""

    strategy: Strategy
    axes: dict[str, np.ndarray]

    @classmethod
    def of(cls, strategy: Strategy) -> Space:
        enabled = {k: opt for k, opt in strategy.optimization_space.items() if opt.enabled}
        if not enabled:
            keys = ", ".join(strategy.optimization_space) or "none"
            raise SweepInputError(
                "optimization_space: no enabled parameter to sweep (parameters: "
                f"{keys}); set enabled: true on at least one, with its min, max and step"
            )
        axes = {}
        for key, opt in enabled.items():
            count = int(math.floor((opt.max - opt.min) / opt.step + 1e-9)) + 1
            values = np.round(opt.min + np.arange(count) * opt.step, 10)
            if strategy.param_is_whole(key) and not np.all(values == np.round(values)):
                raise SweepInputError(
                    f"optimization_space.{key}: min {opt.min:g} and step {opt.step:g} give values that are "
                    "not whole numbers, and this parameter takes whole numbers"
                )
            axes[key] = values
        return cls(strategy=strategy, axes=axes)

    @property
    def keys(self) -> list[str]:
        return list(self.axes)

    @property
    def size(self) -> int:
        """Combinations in the full grid, before pairs the catalog forbids are dropped."""
        return math.prod(len(v) for v in self.axes.values())

    def describe(self) -> str:
        """'26 x 46 (ema_fast.window x ema_slow.window)'."""
        return f"{' x '.join(str(len(v)) for v in self.axes.values())} ({' x '.join(self.axes)})"

    def check_limit(self, limit: int) -> None:
        """Refuse a grid of more than ``limit`` combinations, saying what to do instead."""
        if self.size > limit:
            raise SweepInputError(
                f"--max-combos: the grid of optimization_space has {self.size:,} combinations "
                f"({self.describe()}), over the limit of {limit:,}; use --method optuna to sample "
                f"{limit:,} of them, raise --max-combos, or disable or coarsen a parameter"
            )

    def grid(self, limit: int) -> pd.DataFrame:
        """Every combination, one row each; refused when there are more than ``limit``."""
        self.check_limit(limit)
        mesh = np.meshgrid(*self.axes.values(), indexing="ij")
        combos = pd.DataFrame({k: m.ravel() for k, m in zip(self.axes, mesh, strict=True)})
        return self.valid(combos)

    def valid(self, combos: pd.DataFrame) -> pd.DataFrame:
        """The combinations the catalog allows (see :meth:`allowed`), typed."""
        return self.typed(combos[self.allowed(combos)].reset_index(drop=True))

    def allowed(self, combos: pd.DataFrame) -> np.ndarray:
        """Which combinations the catalog allows: an ordered pair of one indicator (MACD's fast < slow)
        must stay ordered."""
        keep = np.ones(len(combos), dtype=bool)
        for ind in self.strategy.indicators:
            for a, b in CATALOG[ind.type].ordered:
                lo = combos[f"{ind.id}.{a}"] if f"{ind.id}.{a}" in combos else ind.params[a]
                hi = combos[f"{ind.id}.{b}"] if f"{ind.id}.{b}" in combos else ind.params[b]
                keep &= np.broadcast_to(np.asarray(lo < hi), keep.shape)
        return keep

    def typed(self, combos: pd.DataFrame) -> pd.DataFrame:
        """Whole-number parameters as integers, the others as floats."""
        combos = combos.copy()
        for key in self.keys:
            whole = self.strategy.param_is_whole(key)
            combos[key] = combos[key].round().astype(np.int64) if whole else combos[key].astype(float)
        return combos

    def model_keys(self) -> list[str]:
        """Keys that change what a model learns from: windows of indicators feeding its fuzzy sets.
        A combination that changes one of them needs its own training."""
        if not self.strategy.has_model:
            return []
        sources = {src.split(".")[0] for src in self.strategy.fuzzy_sets}
        return [k for k in self.axes if k.rpartition(".")[0] in sources]

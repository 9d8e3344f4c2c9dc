"""The references of many combinations as 2-D arrays (bars x combinations), for the interpreter.

Each indicator is computed once per distinct set of its parameters (:class:`IndicatorCache`) with the
same functions a single backtest uses (``tasks/indicators.py``); a reference whose indicator does not
vary across the combinations is one shared column, broadcast by numpy. Fuzzy degrees are computed from
their source as in ``tasks/features.py``; model outputs come from the group's trained model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from strategy_contract.catalog import CATALOG, PRICE_FIELDS
from strategy_contract.models import Strategy
from tasks import indicators


class IndicatorCache:
    """Indicator outputs by (type, parameters), computed once per process for one set of bars."""

    _shared: dict[str, IndicatorCache] = {}

    def __init__(self, bars: pd.DataFrame):
        self.bars = bars
        self._outputs: dict[tuple, dict[str, np.ndarray]] = {}

    @classmethod
    def shared(cls, bars: pd.DataFrame) -> IndicatorCache:
        """This process's cache for bars with this content: the chunks of a sweep, run one after the
        other here or on a Dask worker, each get their bars anew but compute an indicator only once.
        Holds the caches of the last two data sets."""
        digest = hashlib.sha256(pd.util.hash_pandas_object(bars, index=True).to_numpy().tobytes()).hexdigest()
        if digest not in cls._shared:
            while len(cls._shared) >= 2:
                cls._shared.pop(next(iter(cls._shared)))
            cls._shared[digest] = cls(bars)
        cache = cls._shared[digest]
        cache.bars = bars
        return cache

    def outputs(self, kind: str, params: dict) -> dict[str, np.ndarray]:
        key = (kind, tuple(sorted(params.items())))
        if key not in self._outputs:
            computed = indicators.compute(kind, self.bars, params)
            self._outputs[key] = {name: s.to_numpy(dtype=float) for name, s in computed.items()}
        return self._outputs[key]


class SweepPanel(Mapping):
    """Rule references of the combinations in ``params`` (one row each), built on first use."""

    def __init__(
        self,
        strategy: Strategy,
        params: pd.DataFrame,
        cache: IndicatorCache,
        model_outputs: pd.DataFrame | None = None,
    ):
        self.strategy, self.params, self.cache = strategy, params, cache
        self.model_outputs = model_outputs
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, ref: str) -> np.ndarray:
        if ref not in self._arrays:
            self._arrays[ref] = self._build(ref)
        return self._arrays[ref]

    def __iter__(self):
        return iter(self.strategy.known_refs())

    def __len__(self) -> int:
        return len(self.strategy.known_refs())

    def _build(self, ref: str) -> np.ndarray:
        if ref in PRICE_FIELDS:
            return self.cache.bars[ref].to_numpy(dtype=float)[:, None]
        if ref.startswith("model."):
            if self.model_outputs is None:
                raise KeyError(f"{ref}: no trained model for these combinations")
            return self.model_outputs[ref].to_numpy(dtype=float)[:, None]
        if ref.startswith("fuzzy."):
            source, _, name = ref.removeprefix("fuzzy.").rpartition(".")
            x = self[source]
            degree = self.strategy.fuzzy_sets[source][name].degree(x)
            return np.where(np.isnan(x), np.nan, degree)
        return self._indicator(ref)

    def _indicator(self, ref: str) -> np.ndarray:
        ind_id, _, output = ref.partition(".")
        spec = self.strategy.indicator(ind_id)
        if spec is None:
            raise KeyError(f"{ref}: no such reference")
        output = output or CATALOG[spec.type].outputs[0]
        varying = [c for c in self.params.columns if c.rpartition(".")[0] == ind_id]
        if not varying:
            return self.cache.outputs(spec.type, spec.params)[output][:, None]
        names = [c.rpartition(".")[2] for c in varying]
        rows = [tuple(r) for r in self.params[varying].itertuples(index=False)]
        distinct = list(dict.fromkeys(rows))
        columns = [
            self.cache.outputs(spec.type, {**spec.params, **_typed(spec.type, names, values)})[output]
            for values in distinct
        ]
        position = {values: i for i, values in enumerate(distinct)}
        return np.stack(columns, axis=1)[:, [position[r] for r in rows]]


def _typed(kind: str, names: list[str], values: tuple) -> dict:
    """Parameter values as the catalog types them (a window is an int), so the cache key is canonical."""
    params = CATALOG[kind].params
    return {n: (int(v) if params[n].type is int else float(v)) for n, v in zip(names, values, strict=True)}

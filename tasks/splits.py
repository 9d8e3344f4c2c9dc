"""Time-ordered train / validation / test split with an embargo gap, shared by training and backtest."""

from __future__ import annotations

from dataclasses import dataclass

from strategy_contract.models import DataSplit


@dataclass(frozen=True)
class SplitBounds:
    """Half-open [start, stop) bar positions of each part. The test part is the held-out data."""

    train: tuple[int, int]
    validation: tuple[int, int]
    test: tuple[int, int]

    @property
    def in_sample(self) -> tuple[int, int]:
        """Everything the designer and trainer may look at: train and validation."""
        return (self.train[0], self.validation[1])


def split_bounds(n_bars: int, split: DataSplit) -> SplitBounds:
    """Cut n bars in time order; `embargo_bars` are dropped before validation and before test so that
    labels looking forward from one part never see bars of the next."""
    train_end = int(n_bars * split.train)
    val_end = int(n_bars * (split.train + split.validation))
    gap = split.embargo_bars
    bounds = SplitBounds(
        train=(0, train_end),
        validation=(min(train_end + gap, val_end), val_end),
        test=(min(val_end + gap, n_bars), n_bars),
    )
    for name in ("train", "validation", "test"):
        start, stop = getattr(bounds, name)
        if stop - start < 10:
            raise ValueError(
                f"data: the {name} part has {max(stop - start, 0)} bars after the embargo of {gap}; "
                f"use more data ({n_bars} bars now), a larger data.{name} or a smaller data.embargo_bars"
            )
    return bounds

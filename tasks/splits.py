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

    def selection(self, fitted: bool) -> tuple[int, int]:
        """The bars whose backtest ranks a design, runs the backtest gate and feeds later designs.

        A strategy with a model was fitted on the train part, so it is judged on validation only (an
        overfit model would rank high on bars it has learnt); a rule-only strategy fits nothing and is
        judged on train + validation. The held-out ``test`` part is never among them.
        """
        return self.validation if fitted else self.in_sample

    @staticmethod
    def selection_part(fitted: bool) -> str:
        """The name of :meth:`selection`'s bars, as results and the CLI show it."""
        return "validation" if fitted else "train+validation"


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

"""The sealed holdout: the latest bars of each market, out of reach until the verdict, opened once.

A campaign seals each market when it starts: the research code receives a :class:`DevelopmentMarket`,
whose frame is a copy of the bars before the seal and nothing else, so no iteration, sweep, training,
brief or critique can read a sealed bar (the rows are not in memory that it can reach). The seal is
recorded as the timestamp of the first sealed bar, so a resumed campaign seals at the same place even if
the data file has grown since.

:func:`open_holdout` is the one function that loads the sealed bars. It first creates
``holdout.opened`` in the campaign's folder with O_EXCL: the first call wins; any later call (a second
verdict, a resumed campaign whose verdict was lost) is refused with :class:`HoldoutError`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from tasks.data import frame_sha256, load_market

OPENED = "holdout.opened"


class HoldoutError(RuntimeError):
    """A campaign's holdout was asked for a second time."""


@dataclass(frozen=True)
class Seal:
    """Where a market's holdout starts; the record a campaign keeps to seal the same bars on resume."""

    symbol: str
    timeframe: str
    sealed_from: str  # ISO timestamp of the first sealed bar
    development_bars: int
    sealed_bars: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DevelopmentMarket:
    """The bars a campaign may research on: everything before the seal, and their hash."""

    symbol: str
    timeframe: str
    bars: pd.DataFrame
    sha256: str
    source: str
    seal: Seal


def seal_market(
    symbol: str, timeframe: str, fraction: float, sealed_from: str | None = None
) -> DevelopmentMarket:
    """Seal the latest ``fraction`` of a market's bars (or every bar from ``sealed_from`` on, when
    resuming) and return the rest."""
    market = load_market(symbol, timeframe)
    bars = market.bars
    if sealed_from is None:
        cut = len(bars) - math.ceil(len(bars) * fraction)
    else:
        cut = int(bars.index.searchsorted(pd.Timestamp(sealed_from)))
    if cut < 1 or cut >= len(bars):
        raise ValueError(
            f"holdout_fraction: sealing {symbol} {timeframe} at bar {cut} of {len(bars)} leaves a part empty"
        )
    development = bars.iloc[:cut].copy()
    seal = Seal(symbol, timeframe, bars.index[cut].isoformat(), cut, len(bars) - cut)
    return DevelopmentMarket(symbol, timeframe, development, frame_sha256(development), market.source, seal)


def open_holdout(campaign_dir: Path, seal: Seal, candidate: str) -> tuple[pd.DataFrame, int]:
    """All bars of the sealed market and the position of the first sealed one, for ``candidate`` (its
    name goes into the record). Refused if this campaign's holdout was opened before."""
    campaign_dir.mkdir(parents=True, exist_ok=True)
    record = {"opened_at": datetime.now(UTC).isoformat(), "candidate": candidate, **seal.as_dict()}
    try:
        fd = os.open(campaign_dir / OPENED, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        before = json.loads((campaign_dir / OPENED).read_text(encoding="utf-8") or "{}")
        raise HoldoutError(
            f"{campaign_dir.name}: the holdout was already evaluated (opened at {before.get('opened_at', '?')} "
            f"for {before.get('candidate', '?')}); a campaign's holdout is evaluated once"
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
        fh.flush()
        os.fsync(fh.fileno())
    bars = load_market(seal.symbol, seal.timeframe).bars
    start = int(bars.index.searchsorted(pd.Timestamp(seal.sealed_from)))
    return bars, start

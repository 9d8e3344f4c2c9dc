"""The files of ``reports/campaigns/<id>/``: what a person audits, and what a resumed campaign reads back.

An iteration is finished when ``iterations/iter_<n>.json`` exists: its table (Parquet) and its trials'
OOS returns (one ``.npy`` per market) are written first, each atomically, and the JSON last.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from strategy_contract.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from tasks.campaign.request import CampaignInputError
from tasks.places import reports_dir

CAMPAIGN_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LEADERBOARD_COLUMNS = (
    "iteration",
    "market",
    "strategy_id",
    "score",
    "oos_sharpe",
    "oos_annual_return",
    "oos_max_drawdown",
    "oos_trades",
    "oos_degradation",
    "fold_sharpe_std",
    "is_sharpe",
)


def campaigns_dir() -> Path:
    return reports_dir() / "campaigns"


def campaign_dir(campaign_id: str) -> Path:
    """The folder of a campaign; the id is checked before it touches a path (whole: ``$`` alone would
    let a trailing newline through)."""
    if not isinstance(campaign_id, str) or not CAMPAIGN_ID.fullmatch(campaign_id):
        raise CampaignInputError(
            f"campaign id {campaign_id!r}: use 1-64 lowercase letters, digits, '-' or '_' (from a letter or digit)"
        )
    return campaigns_dir() / campaign_id


def market_key(symbol: str, timeframe: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", f"{symbol}_{timeframe}".lower()).strip("_")


def write_iteration(
    folder: Path, n: int, summary: dict | None, table: pd.DataFrame, returns: dict[str, np.ndarray]
) -> None:
    """Persist iteration ``n``: table, returns per market, then the summary that marks it finished
    (``summary=None``: not yet finished)."""
    out = folder / "iterations"
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    atomic_write_bytes(out / f"iter_{n}.parquet", buffer.getvalue())
    for market, matrix in returns.items():
        buffer = io.BytesIO()
        np.save(buffer, matrix.astype(np.float32))
        atomic_write_bytes(out / f"iter_{n}_{market}.npy", buffer.getvalue())
    if summary is not None:
        atomic_write_json(out / f"iter_{n}.json", summary)


def finished_iterations(folder: Path) -> list[dict]:
    """The summaries of the finished iterations, in order (1, 2, ...; a gap ends the list)."""
    out = []
    while (path := folder / "iterations" / f"iter_{len(out) + 1}.json").is_file():
        out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def all_trials(folder: Path, iterations: int) -> pd.DataFrame:
    """Every evaluated combination of the first ``iterations`` iterations, with its iteration."""
    parts = []
    for n in range(1, iterations + 1):
        table = pd.read_parquet(folder / "iterations" / f"iter_{n}.parquet")
        table.insert(0, "iteration", n)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def market_returns(folder: Path, iterations: int, market: str) -> np.ndarray:
    """The condensed OOS returns of every trial on ``market`` so far (rows x trials), in the order of
    :func:`all_trials`' rows of that market."""
    parts = [
        np.load(path)
        for n in range(1, iterations + 1)
        if (path := folder / "iterations" / f"iter_{n}_{market}.npy").is_file()
    ]
    parts = [p for p in parts if p.size]
    return np.hstack(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def leaderboard(trials: pd.DataFrame, top: int = 20) -> pd.DataFrame:
    """The best rows of the campaign by score, with their parameters."""
    ranked = trials.sort_values("score", ascending=False, na_position="last", kind="stable").head(top)
    first = [c for c in LEADERBOARD_COLUMNS if c in ranked]
    params = [c for c in ranked.columns if "." in c]
    return ranked[first + params]


def trajectory_png(iterations: list[dict], title: str) -> bytes:
    """Best score of each iteration and the campaign's running best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [it["iteration"] for it in iterations]
    y = [it.get("best_score") if it.get("best_score") is not None else np.nan for it in iterations]
    running = np.fmax.accumulate(np.array(y, dtype=float)) if y else np.array([])
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    ax.plot(x, y, "o-", color="#4c72b0", label="iteration best")
    ax.step(x, running, where="post", color="#dd8452", label="campaign best")
    ax.set_xlabel("iteration")
    ax.set_ylabel("composite score")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if x:
        ax.set_xticks(x)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def write_text(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    atomic_write_text(path, text)
    return path

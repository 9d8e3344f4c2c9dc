"""What a sweep leaves behind: ``reports/sweeps/<id>/`` and the pieces of its Prefect artifacts.

- ``results.parquet``: every combination evaluated, its parameters, metrics and score;
- ``leaderboard.csv``: the best ``top`` combinations, best first;
- ``best.yaml``: the contract with the best combination's parameters set;
- ``heatmap.png``: the best score over the two parameters that matter most;
- ``sweep.json``: the request, the counts (every trial), the best combination and the provenance.

The folder is written beside its final place and renamed into it: a sweep's report is whole or absent.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from strategy_contract.io import atomic_write_bytes, atomic_write_json, atomic_write_text, strategy_to_yaml
from strategy_contract.models import Strategy
from tasks.places import reports_dir

LEADERBOARD_METRICS = ("score", "sharpe", "sortino", "total_return", "max_drawdown", "trades", "win_rate")


def sweep_dir(sweep_id: str) -> Path:
    return reports_dir() / "sweeps" / sweep_id


def importance(table: pd.DataFrame, keys: list[str]) -> dict[str, float]:
    """How much of the score's variance each parameter explains alone: the correlation ratio eta^2
    (between-group variance of the mean score per value over the total variance; Pearson, 1905).
    Combinations that cannot win are left out; a parameter with one value explains nothing."""
    scored = table[np.isfinite(table["score"])]
    total = scored["score"].var(ddof=0)
    out = {}
    for key in keys:
        if len(scored) < 2 or not total > 0 or scored[key].nunique() < 2:
            out[key] = 0.0
            continue
        means = scored.groupby(key)["score"].transform("mean")
        out[key] = float(((means - scored["score"].mean()) ** 2).mean() / total)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def heatmap_png(table: pd.DataFrame, x: str, y: str | None, title: str) -> bytes:
    """The best score found at each (x, y) value pair (any values of the other parameters)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = table[np.isfinite(table["score"])]
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=100)
    if y is None or scored.empty:
        best = scored.groupby(x)["score"].max() if not scored.empty else pd.Series(dtype=float)
        ax.plot(best.index, best.to_numpy(), marker="o")
        ax.set_xlabel(x)
        ax.set_ylabel("best score")
    else:
        grid = scored.pivot_table(index=y, columns=x, values="score", aggfunc="max")
        image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(grid.columns)), [f"{v:g}" for v in grid.columns], rotation=90, fontsize=7)
        ax.set_yticks(range(len(grid.index)), [f"{v:g}" for v in grid.index], fontsize=7)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        fig.colorbar(image, ax=ax, label="best score (blank: no combination may win)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def write_report(
    sweep_id: str,
    table: pd.DataFrame,
    leaderboard: pd.DataFrame,
    best: Strategy | None,
    heatmap: bytes,
    summary: dict,
) -> Path:
    """Write the report folder whole: into a hidden sibling, then one rename."""
    final = sweep_dir(sweep_id)
    partial = final.parent / f".{sweep_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    atomic_write_bytes(partial / "results.parquet", buffer.getvalue())
    atomic_write_text(partial / "leaderboard.csv", leaderboard.to_csv(index=False))
    if best is not None:
        atomic_write_text(partial / "best.yaml", strategy_to_yaml(best))
    atomic_write_bytes(partial / "heatmap.png", heatmap)
    atomic_write_json(partial / "sweep.json", summary)
    os.replace(partial, final)
    return final

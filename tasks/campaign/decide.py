"""The campaign's decisions: when to stop, how lucky the best candidate may be, and the verdict.

Multiple testing (``overfitting``): every combination evaluated on every market in every iteration is a
trial. The deflated Sharpe ratio of the chosen candidate uses the campaign's whole trial count and the
variance of the per-bar OOS Sharpe ratios of the trials on the candidate's market (those share its time
axis and units); PBO is CSCV over the condensed OOS returns of every trial on that market (all trials of
a market share the same walk-forward test blocks, whatever the contract, so their records line up).
"""

from __future__ import annotations

import math

import numpy as np

from tasks.campaign.request import CampaignGates, StopRules
from tasks.campaign.score import criterion, walk_forward_criteria
from tasks.evaluate.overfitting import deflated_sharpe, pbo_cscv, probabilistic_sharpe

PBO_BLOCKS = 16

HARD_STOPS = ("max_iterations", "max_hours", "budget_exhausted", "max_failed", "risk_gate_breach")
SOFT_STOPS = ("no_improvement", "non_convergence", "overfitting_signal")


def overfitting(best: dict, trial_sharpes: np.ndarray, trials: int, returns: np.ndarray) -> dict:
    """PSR, DSR and PBO of the chosen candidate (see the module docstring)."""
    sharpe, bars = float(best["sharpe_per_bar"]), int(best["oos_bars"])
    skew, kurt = float(best["oos_skew"]), float(best["oos_kurtosis"])
    finite = trial_sharpes[np.isfinite(trial_sharpes)]
    variance = float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0
    out: dict = {
        "trials": trials,
        "sharpe_per_bar": sharpe,
        "observations": bars,
        "trial_sharpe_variance": variance,
    }
    try:
        out["psr"] = probabilistic_sharpe(sharpe, 0.0, bars, skew, kurt)
        out["dsr"] = deflated_sharpe(sharpe, bars, skew, kurt, trials, variance)
    except ValueError as exc:  # a record too short, or moments that leave no variance
        out.update(psr=None, dsr=None, dsr_note=str(exc))
    usable = distinct_columns(returns)
    if usable.shape[1] >= 2 and usable.shape[0] >= 2 * PBO_BLOCKS:
        cscv = pbo_cscv(usable, PBO_BLOCKS)
        out.update(pbo=cscv["pbo"], pbo_splits=cscv["splits"], pbo_trials=cscv["trials"])
    else:
        out.update(pbo=None, pbo_note="fewer than two trials on this market: no selection to overfit")
    return out


def distinct_columns(returns: np.ndarray) -> np.ndarray:
    """The trials' return matrix for CSCV: finite columns, each distinct record once. A combination
    asked for again in a later iteration is the same strategy; counted as a trial (DSR), it would only
    add ties to the ranks here."""
    if returns.ndim != 2 or not returns.size:
        return np.zeros((0, 0))
    finite = returns[:, np.isfinite(returns).all(axis=0)].astype(float)
    _, first = np.unique(finite.round(12), axis=1, return_index=True)
    return finite[:, np.sort(first)]


def stop_reason(
    iterations: list[dict], rules: StopRules, hours: float, usd: float, max_drawdown: float
) -> str | None:
    """The first stop criterion that holds after the last finished iteration, hard ones first."""
    n = len(iterations)
    if n >= rules.max_iterations:
        return "max_iterations"
    if hours >= rules.max_hours:
        return "max_hours"
    if rules.max_usd is not None and usd >= rules.max_usd:
        return "budget_exhausted"
    if n >= rules.max_failed and all(it.get("failed") for it in iterations[-rules.max_failed :]):
        return "max_failed"
    recent = iterations[-rules.max_risk_breaches :]
    if len(recent) == rules.max_risk_breaches and all(_breach(it, max_drawdown) for it in recent):
        return "risk_gate_breach"
    if since_improvement(iterations, rules.min_improvement) >= rules.patience:
        return "no_improvement"
    scores = [it["best_score"] for it in iterations if it.get("best_score") is not None]
    if len(scores) >= rules.swing_window and float(np.std(scores[-rules.swing_window :])) > rules.max_swing:
        return "non_convergence"
    pbo = [(it.get("overfitting") or {}).get("pbo") for it in iterations[-2:]]
    if len(pbo) == 2 and all(p is not None and p > rules.pbo_stop for p in pbo):  # twice: one is noisy
        return "overfitting_signal"
    if rules.deflation_stop and n >= 3 and _deflating(iterations[-3:]):
        return "overfitting_signal"
    return None


def _breach(iteration: dict, max_drawdown: float) -> bool:
    best = iteration.get("best") or {}
    dd = best.get("oos_max_drawdown")
    return dd is not None and dd > max_drawdown


def _deflating(last3: list[dict]) -> bool:
    """The in-sample score rose twice while the deflated Sharpe fell twice: a search fitting noise."""
    is_sharpe = [(it.get("best") or {}).get("is_sharpe") for it in last3]
    dsr = [(it.get("overfitting") or {}).get("dsr") for it in last3]
    if any(v is None or not math.isfinite(v) for v in is_sharpe + dsr):
        return False
    return is_sharpe[0] < is_sharpe[1] < is_sharpe[2] and dsr[0] > dsr[1] > dsr[2]


def since_improvement(iterations: list[dict], min_improvement: float) -> int:
    """Iterations since the best score last improved by at least ``min_improvement``."""
    best, since = -math.inf, 0
    for it in iterations:
        score = it.get("best_score")
        if score is not None and score > best + min_improvement:
            best, since = score, 0
        else:
            since += 1
    return since


def verdict(
    best: dict | None, luck: dict | None, holdout: dict | None, gates: CampaignGates
) -> tuple[str, list[dict]]:
    """``promote_candidate`` when every criterion passes; ``reject`` when the walk-forward gates fail or
    the deflated Sharpe says the edge is more likely luck than not (below 0.5); else ``iterate``."""
    if best is None:
        return "reject", [criterion("a candidate with enough trades", None, gates.min_trades, ">=")]
    rows = walk_forward_criteria(best, gates)
    luck = luck or {}
    rows.append(criterion("deflated Sharpe ratio", luck.get("dsr"), gates.min_dsr, ">="))
    rows.append(criterion("probability of backtest overfitting", luck.get("pbo"), gates.max_pbo, "<="))
    holdout = holdout or {}
    rows.append(criterion("holdout max drawdown", holdout.get("max_drawdown"), gates.max_drawdown, "<="))
    rows.append(criterion("holdout Sharpe", holdout.get("sharpe"), gates.min_sharpe, ">="))
    if all(r["passed"] for r in rows):
        return "promote_candidate", rows
    dsr = luck.get("dsr")
    if not all(r["passed"] for r in rows[:4]) or dsr is None or dsr < 0.5:
        return "reject", rows
    return "iterate", rows

"""What a campaign is asked to do: the typed request behind `stratlab campaign start|run` and the
`campaign` deployment's form, checked before anything runs."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.data import DataError, available_markets
from tasks.llm.pricing import DEFAULT_MODEL, model_price

MARKET = re.compile(r"^(?P<symbol>[A-Za-z0-9._-]{1,32}):(?P<timeframe>[^:]*)$")
TIMEFRAME = re.compile(r"^[1-9][0-9]{0,2}(m|h|d)$")


class CampaignInputError(ValueError):
    """A request that cannot run; the message names the field and the reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreWeights(_Model):
    """Seed 003's composite score: how much each component counts. They must add up to 1."""

    return_quality: float = Field(0.35, ge=0, le=1, description="Annualised out-of-sample return.")
    drawdown_control: float = Field(0.30, ge=0, le=1, description="Max drawdown against its gate.")
    risk_adjusted: float = Field(0.20, ge=0, le=1, description="Out-of-sample Sharpe ratio.")
    robustness: float = Field(
        0.15, ge=0, le=1, description="OOS degradation and the dispersion of fold Sharpe ratios."
    )

    @model_validator(mode="after")
    def _sum_to_one(self) -> ScoreWeights:
        total = self.return_quality + self.drawdown_control + self.risk_adjusted + self.robustness
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"they add up to {total:g}; they must add up to 1")
        return self


class CampaignGates(_Model):
    """What a candidate must pass to be promoted (seed 003's mandatory gates plus the luck filters)."""

    max_drawdown: float = Field(0.25, gt=0, le=1, description="Walk-forward OOS max drawdown, at most.")
    min_sharpe: float = Field(0.5, description="Walk-forward OOS annualised Sharpe ratio, at least.")
    max_oos_degradation: float = Field(
        0.5, ge=0, description="(in-sample Sharpe - OOS Sharpe) / in-sample Sharpe, at most."
    )
    min_trades: int = Field(20, ge=1, description="Closed OOS trades, at least (fewer say nothing).")
    min_dsr: float = Field(0.95, ge=0, le=1, description="Deflated Sharpe ratio, at least.")
    max_pbo: float = Field(
        0.5, ge=0, le=1, description="Probability of backtest overfitting (CSCV), at most."
    )


class StopRules(_Model):
    """When the loop ends (checked after every iteration). Hard stops end it at once; soft stops end it
    when more iterations are unlikely to help."""

    max_iterations: int = Field(10, ge=1, le=10_000)
    max_hours: float = Field(24.0, gt=0, le=24 * 365, description="Wall clock, hours.")
    max_usd: float | None = Field(
        None, ge=0, description="Dollars for Claude's calls, on top of the daily ledger; empty: no limit."
    )
    max_failed: int = Field(3, ge=1, description="Consecutive iterations that failed to run.")
    max_risk_breaches: int = Field(
        3, ge=1, description="Consecutive iterations whose best candidate breaks the drawdown gate."
    )
    patience: int = Field(4, ge=1, description="Iterations without a better best score.")
    min_improvement: float = Field(0.005, ge=0, description="A better score beats the best by this.")
    swing_window: int = Field(4, ge=2, description="Iterations over which non-convergence is judged.")
    max_swing: float = Field(
        0.25, gt=0, description="Non-convergence: std of the last iterations' best scores above this."
    )
    deflation_stop: bool = Field(
        True, description="Overfitting signal: in-sample Sharpe up and deflated Sharpe down, 3 iterations."
    )
    pbo_stop: float = Field(
        0.6, ge=0, le=1, description="Overfitting signal: PBO above this in two iterations in a row stops."
    )


class CampaignRequest(_Model):
    """A campaign: what to look for, where, with what limits. The form of the `campaign` deployment."""

    prompt: str = Field(min_length=1, max_length=4000, description="What you want, in a few sentences.")
    markets: list[str] = Field(
        default_factory=lambda: ["EURUSD:1h"],
        min_length=1,
        max_length=10,
        description="SYMBOL:timeframe pairs from the market data, e.g. EURUSD:1h, SPX:1d.",
    )
    strategy_file: str | None = Field(
        None, description="Start from this contract instead of compiling one from the prompt."
    )
    designer: Literal["auto", "local", "claude"] = Field(
        "auto", description="Who writes the brief and critiques: auto = Claude with a key, else local."
    )
    model: str = Field(DEFAULT_MODEL, description="Claude model for the brief and the critic.")
    holdout_fraction: float = Field(
        0.2, ge=0.05, le=0.5, description="Latest part of each market, sealed until the verdict."
    )
    folds: int = Field(5, ge=2, le=20, description="Walk-forward folds over the development bars.")
    walk_forward: Literal["rolling", "anchored"] = Field(
        "anchored", description="anchored: each fold trains on all bars before it; rolling: one block."
    )
    trials_per_iteration: int = Field(
        200, ge=1, le=1_000_000, description="Combinations per market and iteration (grid or Optuna)."
    )
    max_changes: int = Field(4, ge=1, le=50, description="Most contract fields a critique may change.")
    seed: int = Field(42, ge=0, le=2**31 - 1)
    weights: ScoreWeights = Field(default_factory=ScoreWeights)
    gates: CampaignGates = Field(default_factory=CampaignGates)
    stop: StopRules = Field(default_factory=StopRules)

    @field_validator("markets")
    @classmethod
    def _market_format(cls, markets: list[str]) -> list[str]:
        normalised = []
        for i, text in enumerate(markets):
            match = MARKET.match(text.strip())
            if match is None:
                raise ValueError(f"markets[{i}]: '{text}' is not SYMBOL:timeframe (e.g. EURUSD:1h)")
            if not TIMEFRAME.match(match["timeframe"]):
                raise ValueError(
                    f"markets[{i}]: '{match['timeframe']}' is not a timeframe (minutes, hours or days: "
                    "15m, 1h, 1d)"
                )
            normalised.append(f"{match['symbol'].upper()}:{match['timeframe']}")
        if len(set(normalised)) != len(normalised):
            raise ValueError("markets: a market is listed twice")
        return normalised

    @field_validator("model")
    @classmethod
    def _priced_model(cls, model: str) -> str:
        model_price(model)  # an unknown model has no price, so no budget could hold it
        return model

    @property
    def market_pairs(self) -> list[tuple[str, str]]:
        return [tuple(m.split(":")) for m in self.markets]  # type: ignore[misc]


def check_markets(request: CampaignRequest) -> None:
    """Every market of the request has bars; raises CampaignInputError naming the first that has none."""
    try:
        have = available_markets()
    except DataError as exc:
        raise CampaignInputError(f"markets: {exc}") from exc
    for i, (symbol, timeframe) in enumerate(request.market_pairs):
        if (symbol, timeframe) not in have:
            same_symbol = sorted(tf for s, tf in have if s == symbol)
            hint = (
                f"{symbol} has {', '.join(same_symbol)}"
                if same_symbol
                else f"known: {', '.join(sorted({f'{s}:{tf}' for s, tf in have}))}"
            )
            raise CampaignInputError(f"markets[{i}]: no market data for {symbol} {timeframe} ({hint})")


def parse_request(data: dict) -> CampaignRequest:
    """A request from plain data, with pydantic's errors turned into one line per field."""
    from pydantic import ValidationError

    try:
        return CampaignRequest.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "request"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(message if message.startswith(where) else f"{where}: {message}")
        raise CampaignInputError("; ".join(lines)) from None

"""Dollar prices of Claude models, and the cost of a request from its token usage.

Prices are US dollars per million tokens (platform.claude.com/docs/models/overview, checked 2026-11).
Cache writes cost 1.25x the input price and cache reads 0.1x (5-minute cache). Override or extend the
table with a JSON file named by ``$STRATLAB_PRICES_FILE``:
``{"claude-opus-5": {"input": 5, "output": 25, "cache_write": 6.25, "cache_read": 0.5}}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

DEFAULT_MODEL = "claude-opus-5"


class ModelPrice(BaseModel):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float = Field(ge=0)
    cache_read: float = Field(ge=0)


def _price(input_: float, output: float) -> ModelPrice:
    return ModelPrice(input=input_, output=output, cache_write=input_ * 1.25, cache_read=input_ * 0.1)


PRICES: dict[str, ModelPrice] = {
    "claude-opus-5": _price(5.0, 25.0),
    "claude-opus-5-5": _price(4.0, 20.0),
    "claude-fable-5-1": _price(10.0, 50.0),
    "claude-sonnet-5": _price(2.0, 10.0),
    "claude-haiku-4-5": _price(1.0, 5.0),
}


class TokenUsage(BaseModel):
    """The four token counts a response's ``usage`` reports."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0


def price_table() -> dict[str, ModelPrice]:
    """The built-in table, overridden model by model by ``$STRATLAB_PRICES_FILE``."""
    table = dict(PRICES)
    path = os.environ.get("STRATLAB_PRICES_FILE")
    if path:
        try:
            overrides = json.loads(Path(path).read_text())
            table.update({model: ModelPrice.model_validate(p) for model, p in overrides.items()})
        except (OSError, ValueError, ValidationError, AttributeError) as exc:
            raise ValueError(f"STRATLAB_PRICES_FILE {path}: {exc}") from None
    return table


def model_price(model: str) -> ModelPrice:
    table = price_table()
    if model not in table:
        raise ValueError(
            f"no price for model '{model}'; known: {', '.join(sorted(table))}. "
            "Add it with a JSON file named by STRATLAB_PRICES_FILE."
        )
    return table[model]


def cost_usd(usage: TokenUsage, price: ModelPrice) -> float:
    """What a response cost, from its usage."""
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_write_tokens * price.cache_write
        + usage.cache_read_tokens * price.cache_read
    ) / 1e6


def worst_case_usd(request_chars: int, max_tokens: int, price: ModelPrice) -> float:
    """An upper bound on a request's cost before it is sent: every input token billed at the dearer of
    the input and cache-write prices (at most one token per 3 characters of the request), and the
    full ``max_tokens`` of output."""
    input_tokens = request_chars // 3 + 100
    return (input_tokens * max(price.input, price.cache_write) + max_tokens * price.output) / 1e6

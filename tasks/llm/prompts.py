"""Prompts and tool definitions for Claude, kept short and stable so they can be cached.

The cache prefix is tools, then system. One ``cache_control`` breakpoint at the end of the system
prompt caches both, so every request after the first in five minutes reads them at a tenth of the
price. Nothing that changes from cycle to cycle belongs in here; it goes into the user message or
tool results.
"""

from __future__ import annotations

from typing import Any

from strategy_contract.schema import contract_schema

DESIGN_MAX_TOKENS = 6000
ASSESS_MAX_TOKENS = 3000

DESIGN_SYSTEM = """You design trading strategies for Strategy Lab, an autonomous research system.
A strategy is a declarative contract (never code): indicators from the catalog, optional fuzzy sets over
indicator outputs, an optional MLP that reads the fuzzy memberships, entry rules (all must hold), exit
rules (any one exits), a risk model with stops and costs, and an optimisation space.
Work like a careful quant researcher:
1. Call list_symbols and list_indicators, and recent_strategies to learn from earlier cycles.
2. Design one new strategy with a clear, testable thesis. Do not repeat a design that already failed.
3. Call validate_contract, fix every error it names, then save_contract. Saving ends your turn.
Rules refer to: price fields (open, high, low, close, volume), indicator outputs (ema_fast,
macd_1.signal), fuzzy degrees (fuzzy.rsi_14.oversold) and, with a model, model.prob_up / prob_flat /
prob_down / signal.
Signals act at the next bar's open. The latest bars are held out for the person and never shown
to you; results you see come from the train and validation parts. The operator sets minimum gates,
cost floors and the held-out share: a contract may tighten them, never loosen them. The
strategy_id must be a new lower-case slug (letters, digits, underscores)."""

ASSESS_SYSTEM = """You assess the result of one research cycle in Strategy Lab.
You get the strategy contract, its training metrics (if it has a model: accuracy on the validation
part) and its backtest metrics on the selection part of the data (validation bars for a model, train
and validation bars for rules). The latest bars are held out for the person and are not shown to you.
Judge it like a sceptical risk manager: compare with buy-and-hold on the same bars and with the
majority-class baseline, and look for too few trades and costs eating the edge. Profit factor
"Infinity" means no losing trade. Then call submit_assessment once:
- verdict: promote_candidate (robust edge), iterate (promising, needs work) or reject;
- strengths, weaknesses, suggestions: short, concrete, each grounded in a number you were given;
- learnings: one to three lessons a later designer should know, phrased to stand alone."""


def _cached_system(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


def _strip(schema: Any) -> Any:
    """Pydantic's schema without the keywords the tool input schema does not need."""
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k not in ("discriminator", "$id")}
    if isinstance(schema, list):
        return [_strip(v) for v in schema]
    return schema


def contract_input_schema() -> dict[str, Any]:
    schema = _strip(contract_schema())
    schema.pop("title", None)
    return schema


NO_INPUT = {"type": "object", "properties": {}}


def _tool(name: str, description: str, input_schema: dict[str, Any] = NO_INPUT) -> dict[str, Any]:
    return {"name": name, "description": description, "input_schema": input_schema}


def _list_indicators() -> dict[str, Any]:
    return _tool("list_indicators", "The indicator catalog: types, parameters with bounds, outputs.")


def _validate_contract(contract: dict[str, Any]) -> dict[str, Any]:
    return _tool("validate_contract", "Check a contract without saving it; errors name the field.", contract)


def design_tools() -> list[dict[str, Any]]:
    contract = contract_input_schema()
    return [
        _list_indicators(),
        _tool("list_symbols", "Markets with data: symbol, timeframe, bars and date range."),
        _tool(
            "recent_strategies",
            "The latest strategies tried, newest first: outcome, metrics on the selection "
            "part of the data (never the held-out part), verdict, learnings.",
            {"type": "object", "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 10}}},
        ),
        _validate_contract(contract),
        _tool("save_contract", "Validate and save the contract; this ends the design.", contract),
    ]


def design_request(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "max_tokens": DESIGN_MAX_TOKENS,
        "system": _cached_system(DESIGN_SYSTEM),
        "tools": design_tools(),
        "messages": messages,
    }


def design_brief(symbol: str | None, timeframe: str | None) -> str:
    if symbol:
        market = f"{symbol} {timeframe}" if timeframe else f"{symbol} (any timeframe it has)"
        return f"Design one new strategy for {market}."
    return "Design one new strategy for a market of your choice from list_symbols."


ASSESSMENT_TOOL = {
    "name": "submit_assessment",
    "description": "Record your assessment of this cycle.",
    "input_schema": {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["promote_candidate", "iterate", "reject"]},
            "summary": {"type": "string", "maxLength": 600},
            "strengths": {"type": "array", "items": {"type": "string", "maxLength": 300}, "maxItems": 8},
            "weaknesses": {"type": "array", "items": {"type": "string", "maxLength": 300}, "maxItems": 8},
            "suggestions": {"type": "array", "items": {"type": "string", "maxLength": 300}, "maxItems": 8},
            "learnings": {
                "type": "array",
                "items": {"type": "string", "maxLength": 300},
                "minItems": 1,
                "maxItems": 3,
            },
        },
        "required": ["verdict", "summary", "strengths", "weaknesses", "suggestions", "learnings"],
    },
}


def assess_request(brief: str) -> dict[str, Any]:
    return {
        "max_tokens": ASSESS_MAX_TOKENS,
        "system": _cached_system(ASSESS_SYSTEM),
        "tools": [ASSESSMENT_TOOL],
        "tool_choice": {"type": "tool", "name": "submit_assessment"},
        "messages": [{"role": "user", "content": brief}],
    }


# --- campaigns (seed 003): the brief writer and the critic ------------------------------------------

BRIEF_MAX_TOKENS = 8000
CRITIC_MAX_TOKENS = 6000

BRIEF_SYSTEM = """You write the brief and the first contract of a research campaign in Strategy Lab.
A person described what they want; the campaign will sweep the contract's optimisation space on every
market it names, evaluate each combination walk-forward, and refine the contract over iterations.
A contract is data, never code: indicators from the catalog, optional fuzzy sets and MLP, entry rules
(all must hold), exit rules (any one exits), a risk model, and an optimisation space whose enabled
parameters the sweep tunes (give each a sensible range and step: a few hundred combinations at most).
1. Call list_markets and list_indicators.
2. Turn the request into a thesis you can test with the catalog. Say plainly what you could not honour.
3. Call validate_contract, fix every error it names, then save_brief with the brief (markdown: the
   thesis, how the contract expresses it, the parameters tuned and why, what was not understood) and
   the contract for the first market. Saving ends your turn.
Signals act at the next bar's open. The latest bars of each market are sealed until the verdict: you
never see them. The operator's gates and cost floors may be tightened, never loosened."""

CRITIC_SYSTEM = """You are the critic of a research campaign in Strategy Lab. After each iteration you
get the contract that ran, the walk-forward results of its best candidates (out-of-sample fold tests
joined; the sealed holdout is never shown), the campaign's history and its gates. Propose the next
contract as a JSON merge patch (RFC 7396) over the current one, through propose_patch:
- objects merge key by key, a null deletes a key, a list replaces the whole list;
- change logic (indicators, rules, fuzzy sets, model) and/or the optimisation space (narrow around the
  best region, shift a range whose best value sits on its edge, widen a range that is too tight);
- change at most max_changes fields: a tuned parameter (its range, step and value) counts once, any
  other changed value counts once; markets, timeframes and strategy_id cannot change;
- ground each change in a number you were given; chasing one fold or a tiny improvement is fitting noise.
Every trial counts against the campaign in the deflated Sharpe ratio: prefer few, meaningful changes.
An invalid patch comes back as an error naming the field; fix it and propose again."""


def brief_tools() -> list[dict[str, Any]]:
    contract = contract_input_schema()
    brief = {
        "type": "object",
        "properties": {"brief": {"type": "string", "maxLength": 6000}, "contract": contract},
        "required": ["brief", "contract"],
    }
    return [
        _list_indicators(),
        _tool("list_markets", "The campaign's markets: development bars, date range, typical one-bar move."),
        _validate_contract(contract),
        _tool(
            "save_brief", "Validate and save the brief and the first contract; this ends your turn.", brief
        ),
    ]


PATCH_TOOL = {
    "name": "propose_patch",
    "description": "Propose the next contract as a JSON merge patch over the current one.",
    "input_schema": {
        "type": "object",
        "properties": {
            "rationale": {"type": "string", "maxLength": 2000},
            "patch": {"type": "object", "description": "RFC 7396 merge patch over the current contract."},
        },
        "required": ["rationale", "patch"],
    },
}


def brief_request(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "max_tokens": BRIEF_MAX_TOKENS,
        "system": _cached_system(BRIEF_SYSTEM),
        "tools": brief_tools(),
        "tool_choice": {"type": "any"},
        "messages": messages,
    }


def critic_request(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "max_tokens": CRITIC_MAX_TOKENS,
        "system": _cached_system(CRITIC_SYSTEM),
        "tools": [PATCH_TOOL],
        "tool_choice": {"type": "tool", "name": "propose_patch"},
        "messages": messages,
    }

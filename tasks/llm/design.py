"""Claude designs a strategy through tools (seed 000): list indicators, list symbols, recent strategies,
validate contract, save contract.

The model's output is data: tool inputs are validated by the contract's pydantic models and checked
against the data we have; nothing it writes is executed. An invalid contract goes back as an error
tool result naming the field, and the model may repair it a bounded number of times.
"""

from __future__ import annotations

from pydantic import BaseModel

from strategy_contract import ContractError, Strategy, describe_catalog, parse_strategy
from tasks.data import DatasetInfo
from tasks.llm.prompts import design_brief, design_request
from tasks.llm.session import CallRecord, ClaudeSession
from tasks.llm.tools import ToolBox, ToolCall, compact, tool_loop
from tasks.settings import enforce_operator_rules
from tasks.storage import PastCycle

MAX_REQUESTS = 8  # model turns before we give up
MAX_INVALID = 3  # rejected contracts before we give up
HISTORY_TEXT_LIMIT = 300  # characters per learning shown to the designer


class ClaudeDesign(BaseModel):
    strategy: Strategy
    calls: list[CallRecord]
    tool_calls: list[ToolCall]
    rejected_contracts: int


class DesignTools(ToolBox):
    """The designer's tools, over the data, history and names this cycle can see."""

    checked = ("validate_contract", "save_contract")

    def __init__(
        self,
        datasets: list[DatasetInfo],
        history: list[tuple[PastCycle, Strategy]],
        taken: set[str],
        symbol: str | None,
        timeframe: str | None,
    ):
        super().__init__()
        self.datasets = datasets
        self.history = history
        self.taken = taken
        self.symbol, self.timeframe = symbol, timeframe

    def handlers(self):
        return {
            "list_indicators": self._list_indicators,
            "list_symbols": self._list_symbols,
            "recent_strategies": self._recent,
            "validate_contract": self._validate,
            "save_contract": self._save,
        }

    def _list_indicators(self, _: dict) -> tuple[str, None]:
        return compact(describe_catalog()), None

    def _list_symbols(self, _: dict) -> tuple[str, None]:
        rows = [
            {
                "symbol": d.symbol,
                "timeframe": d.timeframe,
                "bars": d.rows,
                "start": f"{d.start:%Y-%m-%d}",
                "end": f"{d.end:%Y-%m-%d}",
            }
            for d in self.datasets
        ]
        return compact(rows), None

    def _recent(self, args: dict) -> tuple[str, None]:
        limit = min(max(int(args.get("limit", 5) or 5), 1), 10)
        newest = sorted(self.history, key=lambda ps: ps[0].started_at, reverse=True)[:limit]
        rows = [
            {
                "strategy_id": p.strategy_id,
                "family": p.family,
                "market": f"{s.symbol} {s.timeframe}",
                "indicators": sorted({i.type for i in s.indicators}),
                "model": s.model.kind,
                "status": p.status,
                "reason": p.reason,
                "judged_on": p.selection_part,
                "sharpe": p.selection_sharpe,
                "total_return": p.selection_return,
                "closed_trades": p.selection_trades,
                "verdict": p.verdict,
                "learnings": [t[:HISTORY_TEXT_LIMIT] for t in p.learnings[:3]],
            }
            for p, s in newest
        ]
        return compact(rows) if rows else "no strategies have been tried yet", None

    def _check(self, contract: dict) -> Strategy:
        strategy = parse_strategy(contract, "contract")
        available = {(d.symbol, d.timeframe) for d in self.datasets}
        problems = []
        if (strategy.symbol, strategy.timeframe) not in available:
            choices = ", ".join(f"{s} {t}" for s, t in sorted(available))
            problems.append(
                ("markets[0]", f"no data for {strategy.symbol} {strategy.timeframe}; available: {choices}")
            )
        if self.symbol and strategy.symbol != self.symbol:
            problems.append(("markets[0]", f"this cycle is for {self.symbol}, not {strategy.symbol}"))
        if self.timeframe and strategy.timeframe != self.timeframe:
            problems.append(
                ("timeframes[0]", f"this cycle is for {self.timeframe}, not {strategy.timeframe}")
            )
        if problems:
            raise ContractError("contract", problems)
        return strategy

    def _validate(self, contract: dict) -> tuple[str, None]:
        strategy = enforce_operator_rules(self._check(contract))  # looser than the operator: an error
        return (
            f"valid: {strategy.strategy_id} ({len(strategy.indicators)} indicators, model {strategy.model.kind})",
            None,
        )

    def _save(self, contract: dict) -> tuple[str, Strategy]:
        strategy = enforce_operator_rules(self._check(contract))  # saved as the cycle will run it
        if strategy.strategy_id in self.taken:
            raise ContractError(
                "contract", [("strategy_id", f"'{strategy.strategy_id}' already exists; choose a new name")]
            )
        return f"saved {strategy.strategy_id}", strategy


def design_with_claude(session: ClaudeSession, tools: DesignTools) -> ClaudeDesign:
    """Run the tool loop until the model saves a valid contract, or fail with the reason."""
    saved = tool_loop(
        session,
        "design",
        design_request,
        design_brief(tools.symbol, tools.timeframe),
        tools,
        "a contract",
        MAX_REQUESTS,
        MAX_INVALID,
    )
    return ClaudeDesign(
        strategy=saved, calls=list(session.calls), tool_calls=tools.log, rejected_contracts=tools.rejected
    )


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import uncached_step  # noqa: E402

design_claude = uncached_step(design_with_claude, "design-claude")

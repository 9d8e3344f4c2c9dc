"""What every Claude tool loop shares: a box of named tools whose inputs are data, validated before use,
and the loop that sends tool results back until one tool call ends the work.

A tool's handler returns ``(text, saved)``: ``saved`` is not None when the call ends the loop. A
:class:`ContractError` from a handler becomes an error tool result naming the field, so the model can
repair its input; after ``max_invalid`` rejected inputs, or ``max_requests`` turns, the loop gives up
with the reason. Nothing the model writes is executed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from strategy_contract import ContractError
from tasks.llm.session import ClaudeSession, LLMFailure, as_plain


class ToolCall(BaseModel):
    name: str
    ok: bool
    error: str | None = None


class ToolBox:
    """Named tools for one loop; counts rejected inputs of the tools in ``checked``."""

    checked: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.log: list[ToolCall] = []
        self.rejected = 0
        self.last_error = ""

    def handlers(self) -> dict[str, Callable[[dict], tuple[str, Any]]]:
        raise NotImplementedError

    def run(self, name: str, tool_input: Any) -> tuple[str, bool, Any]:
        """Execute one tool call: (result text, is_error, what it saved, if it ends the loop)."""
        handler = self.handlers().get(name)
        saved = None
        if handler is None:
            text, ok = f"unknown tool '{name}'", False
        elif not isinstance(tool_input, dict):
            text, ok = f"{name}: input must be a JSON object", False
        else:
            try:
                text, saved = handler(tool_input)
                ok = True
            except ContractError as exc:
                text, ok = "\n".join(f"{p}: {r}" if p else r for p, r in exc.problems), False
        if not ok and name in self.checked:
            self.rejected += 1
            self.last_error = _one_line(text)
        self.log.append(ToolCall(name=name, ok=ok, error=None if ok else text[:500]))
        return text, not ok, saved


def _one_line(error: str, most: int = 3, width: int = 160) -> str:
    """A tool error (one problem a line, each possibly quoting the whole input) as one line for a
    reason: the first ``most`` problems, each cut at ``width`` characters, and how many were left out."""
    lines = [line if len(line) <= width else line[: width - 3] + "..." for line in error.splitlines() if line]
    more = f" (and {len(lines) - most} more)" if len(lines) > most else ""
    return "; ".join(lines[:most]) + more


def compact(data: Any) -> str:
    """JSON without spaces: tool results cost tokens."""
    return json.dumps(data, separators=(",", ":"), default=str)


def tool_loop(
    session: ClaudeSession,
    purpose: str,
    request: Callable[[list[dict]], dict],
    first_message: str,
    tools: ToolBox,
    what: str,
    max_requests: int = 8,
    max_invalid: int = 3,
) -> Any:
    """Turns until a tool call saves something (returned), or an :class:`LLMFailure` with the reason.
    ``what`` names the thing to save in those reasons ("a contract", "a patch")."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": first_message}]
    max_tokens = request(messages)["max_tokens"]
    for _ in range(max_requests):
        response = session.create(purpose, **request(messages))
        if response.stop_reason == "refusal":
            raise LLMFailure(f"{purpose}: Claude declined to write {what} (stop_reason: refusal)")
        if response.stop_reason == "max_tokens":
            raise LLMFailure(
                f"{purpose}: the answer reached max_tokens ({max_tokens}) before {what} was saved"
            )
        uses = [b for b in response.content if b.type == "tool_use"]
        if not uses:
            raise LLMFailure(
                f"{purpose}: Claude ended its turn without saving {what} (stop_reason: {response.stop_reason})"
            )
        messages.append({"role": "assistant", "content": as_plain(response.content)})
        results, saved = [], None
        for use in uses:
            text, is_error, done = tools.run(use.name, use.input)
            results.append(
                {"type": "tool_result", "tool_use_id": use.id, "content": text, "is_error": is_error}
            )
            saved = saved if saved is not None else done
        if saved is not None:
            return saved
        if tools.rejected >= max_invalid:
            raise LLMFailure(
                f"{purpose}: nothing valid after {tools.rejected} attempts; last error: {tools.last_error}"
            )
        messages.append({"role": "user", "content": results})
    raise LLMFailure(f"{purpose}: {what} was not saved after {max_requests} requests")

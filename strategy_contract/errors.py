"""The contract's error: every refusal names the field path and the reason, whatever the input was.

Its own module so that the models (which re-validate contracts they derive) and the YAML reader raise
the same error without importing each other.
"""

from __future__ import annotations

import reprlib
from typing import Any

from pydantic import ValidationError


class ContractError(ValueError):
    """A contract was rejected. ``problems`` lists (field path, reason); str() shows them all."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{path}: {reason}" if path else reason for path, reason in problems]
        super().__init__(f"{source}: invalid strategy contract:\n  - " + "\n  - ".join(lines))


class _Short(reprlib.Repr):
    """repr() cut short: a rejected value may be an alias bomb of a billion items or an integer too long
    for Python to print (more than 4,300 digits), and the message only needs its start."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxset = 3, 6, 6, 6, 6
        self.maxstring, self.maxother = 60, 60

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 64:
            return f"<an integer of about {int(x.bit_length() * 0.30103) + 1} digits>"
        return repr(x)


_short = _Short()


def shown(value: Any) -> str:
    """A value as an error message shows it: its repr, at most a line."""
    return _short.repr(value)


_TAGS = {"Condition", "AllOf", "AnyOf"}


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if part in _TAGS:
            continue
        if isinstance(part, int):
            path += f"[{shown(part)}]"
        else:
            part = str(part)
            part = part if part and part.isprintable() else repr(part)  # an empty or multi-line key
            path += f".{part}" if path else part
    return path


def problems_from(error: ValidationError) -> list[tuple[str, str]]:
    """Flatten pydantic's errors into (path, reason) pairs; cross-field checks carry their own paths."""
    problems = []
    for err in error.errors():
        path = _field_path(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        for line in msg.split("\n"):
            if not path and ": " in line:
                problems.append(tuple(line.split(": ", 1)))
            else:
                shown_input = (
                    ""
                    if err["type"] in ("value_error", "assertion_error")
                    else f" (got {shown(err.get('input'))})"
                )
                problems.append((path, line + (shown_input if len(shown_input) < 120 else "")))
    return problems

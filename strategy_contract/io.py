"""Reading and writing contracts: YAML in, validated models out, atomic writes, readable errors."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from strategy_contract.models import Strategy, validate_strategy_id


class ContractError(ValueError):
    """A contract was rejected. ``problems`` lists (field path, reason); str() shows them all."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{path}: {reason}" if path else reason for path, reason in problems]
        super().__init__(f"{source}: invalid strategy contract:\n  - " + "\n  - ".join(lines))


_TAGS = {"Condition", "AllOf", "AnyOf"}


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if part in _TAGS:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
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
                shown = (
                    ""
                    if err["type"] in ("value_error", "assertion_error")
                    else f" (got {err.get('input')!r})"
                )
                problems.append((path, line + (shown if len(shown) < 120 else "")))
    return problems


def parse_strategy(data: Any, source: str = "contract") -> Strategy:
    """Validate plain data (from YAML, JSON or an LLM's tool input) into a Strategy."""
    if not isinstance(data, dict):
        raise ContractError(source, [("", f"expected a mapping of fields, got {type(data).__name__}")])
    try:
        return Strategy.model_validate(data)
    except ValidationError as exc:
        raise ContractError(source, problems_from(exc)) from None


def load_strategy(path: str | Path) -> Strategy:
    """Load and validate a contract file."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(str(path), [("", "file not found")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ContractError(
            str(path), [("", f"{where}not valid YAML ({getattr(exc, 'problem', exc)})")]
        ) from None
    return parse_strategy(data, str(path))


def strategy_to_yaml(strategy: Strategy) -> str:
    """The contract as YAML, with the fields it sets (and its version): a field it leaves out keeps
    meaning "the default", which for gates, costs and the split is the operator's setting."""
    data = strategy.model_dump(mode="json", exclude_unset=True)
    head = {"contract_version": strategy.contract_version, "strategy_id": strategy.strategy_id}
    return yaml.safe_dump({**head, **data}, sort_keys=False, allow_unicode=True, width=100)


def save_strategy(strategy: Strategy, directory: str | Path) -> Path:
    """Write ``<directory>/<strategy_id>.yaml`` atomically and return its path."""
    name = validate_strategy_id(strategy.strategy_id)
    path = Path(directory) / f"{name}.yaml"
    atomic_write_text(path, strategy_to_yaml(strategy))
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def strict_json(value: Any) -> Any:
    """Data that strict JSON can hold: JSON has no infinity and no NaN, so an infinite float (a profit
    factor without a losing trade) becomes the string "Infinity" (or "-Infinity"), which pydantic reads
    back as a float, and NaN (undefined) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write strict JSON atomically (see :func:`strict_json`)."""
    text = json.dumps(strict_json(data), indent=2, sort_keys=False, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")

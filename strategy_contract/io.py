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

from strategy_contract.errors import ContractError, problems_from, shown
from strategy_contract.models import Strategy, validate_strategy_id

# A contract holds a few hundred values nested a dozen levels; far more is an alias bomb or no contract.
MAX_VALUES = 100_000
MAX_DEPTH = 64


def parse_strategy(data: Any, source: str = "contract") -> Strategy:
    """Validate plain data (from YAML, JSON or an LLM's tool input) into a Strategy."""
    if not isinstance(data, dict):
        raise ContractError(source, [("", f"expected a mapping of fields, got {type(data).__name__}")])
    _check_size(data, source)
    try:
        return Strategy.model_validate(data)
    except ValidationError as exc:
        raise ContractError(source, problems_from(exc)) from None


def _check_size(data: Any, source: str) -> None:
    """Refuse data that holds more than MAX_VALUES values or nests deeper than MAX_DEPTH, before
    pydantic walks it: YAML aliases let a few hundred bytes stand for billions of values (the "billion
    laughs"), or for a list that contains itself, and a deep rule tree exhausts Python's recursion."""
    count = 0
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, path = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ContractError(
                source, [(path, f"nested deeper than {MAX_DEPTH} levels; a contract needs a dozen")]
            )
        if count > MAX_VALUES:
            raise ContractError(
                source,
                [(path, f"the contract holds more than {MAX_VALUES:,} values (YAML aliases that expand?)")],
            )
        if isinstance(value, dict):
            for key, inner in value.items():
                name = key if isinstance(key, str) else shown(key)
                stack.append((inner, depth + 1, f"{path}.{name}" if path else name))
        elif isinstance(value, list | tuple):
            stack.extend((inner, depth + 1, f"{path}[{i}]") for i, inner in enumerate(value))


def load_strategy(path: str | Path) -> Strategy:
    """Load and validate a contract file."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(str(path), [("", "file not found")])
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(
            str(path),
            [("", f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); save it as UTF-8")],
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ContractError(
            str(path), [("", f"{where}not valid YAML ({getattr(exc, 'problem', exc)})")]
        ) from None
    except RecursionError:
        raise ContractError(
            str(path),
            [("", f"nested too deeply to read; a contract nests a dozen levels, at most {MAX_DEPTH}")],
        ) from None
    except ValueError as exc:  # a value YAML resolves but Python cannot build: 2020-13-45, a 5,000-digit int
        raise ContractError(str(path), [("", f"a value is not readable ({exc})")]) from None
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

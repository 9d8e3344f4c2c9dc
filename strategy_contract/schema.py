"""The contract's JSON Schema: what an LLM is given to fill in, committed beside the models.

Regenerate after changing the models: ``python -m strategy_contract.schema``.
"""

from __future__ import annotations

import json
from pathlib import Path

from strategy_contract.io import atomic_write_text
from strategy_contract.models import Strategy

SCHEMA_PATH = Path(__file__).with_name("strategy.schema.json")


def contract_schema() -> dict:
    schema = Strategy.model_json_schema()
    schema["$id"] = "https://strategy-lab.local/schemas/strategy-contract-v1.json"
    schema["title"] = "Strategy Lab strategy contract"
    return schema


def render_schema() -> str:
    return json.dumps(contract_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    atomic_write_text(path, render_schema())
    return path


if __name__ == "__main__":
    print(write_schema())

"""The canonical strategy contract: the language between designer, trainer, backtester and exporters.

Imports nothing else of the project.
"""

from strategy_contract.catalog import CATALOG, MODEL_OUTPUTS, PRICE_FIELDS, describe_catalog
from strategy_contract.io import (
    ContractError,
    atomic_write_json,
    atomic_write_text,
    load_strategy,
    parse_strategy,
    save_strategy,
    strategy_to_yaml,
)
from strategy_contract.models import (
    ATRStop,
    Condition,
    MLPModel,
    NoModel,
    PercentStop,
    Rule,
    Strategy,
    validate_strategy_id,
)

__all__ = [
    "CATALOG",
    "MODEL_OUTPUTS",
    "PRICE_FIELDS",
    "ATRStop",
    "Condition",
    "ContractError",
    "MLPModel",
    "NoModel",
    "PercentStop",
    "Rule",
    "Strategy",
    "atomic_write_json",
    "atomic_write_text",
    "describe_catalog",
    "load_strategy",
    "parse_strategy",
    "save_strategy",
    "strategy_to_yaml",
    "validate_strategy_id",
]

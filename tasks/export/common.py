"""What every exporter shares: the diagnostics it must give instead of dropping a feature silently, the
escaping that keeps contract text out of the code, and a symbol's price tick."""

from __future__ import annotations

import hashlib
import json
import math
import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

from tasks.settings import asset_class

Severity = Literal["approximation", "refused"]


class Diagnostic(BaseModel):
    """A contract feature a target cannot express exactly: what was done instead, or why it refused."""

    target: str
    field: str  # the contract field, e.g. "risk_model.slippage"
    severity: Severity
    message: str


class ExportRefused(ValueError):
    """The target cannot run this strategy at all; the diagnostics say why."""

    def __init__(self, target: str, diagnostics: list[Diagnostic]):
        self.target, self.diagnostics = target, diagnostics
        reasons = "; ".join(f"{d.field}: {d.message}" for d in diagnostics if d.severity == "refused")
        super().__init__(f"{target}: cannot export ({reasons})")


class TargetWriter:
    """What every target's writer shares: the diagnostics it collects, refusing with them, and the check
    that an inlined model belongs to the contract it is exported with."""

    target: str  # set by each writer: "pine", "ctrader"

    def __init__(self, strategy, model):
        self.s = strategy
        self.model = model  # an InlinedModel (tasks/export/model.py) or None
        self.diagnostics: list[Diagnostic] = []

    def note(self, field: str, message: str, severity: Severity = "approximation") -> None:
        self.diagnostics.append(
            Diagnostic(target=self.target, field=field, severity=severity, message=message)
        )

    def refuse(self, field: str, message: str) -> None:
        """Add the reason and stop: raises ExportRefused with every diagnostic so far."""
        self.note(field, message, "refused")
        raise ExportRefused(self.target, self.diagnostics)

    def check_model(self) -> None:
        """A neuro-fuzzy strategy needs its trained weights, and they must be this contract's model."""
        from tasks.export.model import fuzzy_inputs
        from tasks.features import CLASS_NAMES

        if self.s.has_model and self.model is None:
            self.refuse(
                "model",
                "a neuro-fuzzy strategy needs its trained model (a checkpoint, model.ckpt: --model FILE) to "
                "inline the MLP's weights; pass model=inline_model(strategy, checkpoint) (tasks/export/model.py)",
            )
        if self.model is None:
            return
        if not self.s.has_model:
            self.refuse("model", "this strategy has no model; the inlined model belongs to another contract")
        if (
            self.model.inputs != fuzzy_inputs(self.s)
            or self.model.lookback != self.s.model.lookback
            or self.model.classes != list(CLASS_NAMES)
        ):
            self.refuse(
                "model",
                "the inlined model's inputs (fuzzy sets and lookback) or classes are not this contract's; "
                "inline the checkpoint trained for this contract",
            )
        self.note(
            "model",
            "the export computes the MLP in float64, the engine in float32: probabilities agree to about "
            "1e-7, so a rule could decide differently on a bar where a probability is that close to its "
            "threshold",
        )


class Export(BaseModel):
    """One target's file and what the exporter had to say about it."""

    target: str
    filename: str
    text: str
    diagnostics: list[Diagnostic]


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def one_line(text: str, limit: int = 400) -> str:
    """Text from a contract as one line without control characters (a newline could end a comment and
    start code)."""
    return _CONTROL.sub(" ", text).strip()[:limit]


def string_literal(text: str) -> str:
    """A double-quoted literal that Pine and C# both read back as ``text`` (one line, escaped)."""
    escaped = one_line(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def identifier(name: str) -> str:
    """A code identifier from a contract name (``ema_fast.window`` -> ``ema_fast_window``)."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return out if re.match(r"[A-Za-z_]", out) else f"v_{out}"


def tick_size(symbol: str) -> float:
    """The price tick the exports round to: 0.00001 for FX (0.001 for JPY pairs), 0.01 otherwise (the
    shipped stocks and indices)."""
    if asset_class(symbol) == "fx":
        return 0.001 if symbol.upper().endswith("JPY") else 0.00001
    return 0.01


def number(value: float) -> str:
    """A float literal with no exponent and no trailing noise (deterministic across platforms)."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = f"{float(value):.12f}".rstrip("0")
    return text if "." in text else f"{text}.0"


def exact_number(value: float) -> str:
    """A float literal that reads back as exactly ``value`` (a weight, a membership point): Python's
    shortest round-trip digits, written without an exponent, which some targets' lexers lack."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value} has no literal")
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text if "." in text else f"{text}.0"


def fixed_param(strategy, indicator_id: str, name: str) -> str:
    """An indicator parameter outside the optimisation space, as a literal (an int for a window)."""
    from strategy_contract.catalog import CATALOG

    ind = strategy.indicator(indicator_id)
    spec = CATALOG[ind.type].params[name]
    value = ind.params.get(name, spec.default)
    return str(int(value)) if spec.type is int else number(value)


def contract_hash(strategy) -> str:
    """sha256 of the contract's canonical JSON: which contract a file was exported from."""
    data = json.dumps(strategy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()

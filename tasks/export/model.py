"""A trained neuro-fuzzy model as plain numbers that any export target can inline.

A strategy with ``model: mlp`` reads ``model.prob_up`` / ``prob_flat`` / ``prob_down`` / ``signal``,
which the engine computes with PyTorch from the Lightning checkpoint of ``tasks/train.py``. An export
(Pine, C#) has no PyTorch: it gets an :class:`InlinedModel` instead, the fuzzy memberships and the
network's weights as floats, and writes the forward pass in its own language.

Three functions make that checkable, target by target:

- :func:`inline_model` reads the checkpoint and refuses one whose shapes disagree with the contract;
- :func:`engine_outputs` is what the engine trades on (``tasks.train.predict`` on the real network);
- :func:`forward` is what an export computes (memberships from the indicator, lags, dense layers,
  ReLU, softmax) in float64 numpy, from the inlined numbers alone.

``forward`` equal to ``engine_outputs`` proves the inlined numbers and the recipe; an export whose outputs
equal ``engine_outputs`` proves its own code.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from strategy_contract.models import Membership, MLPModel, Strategy
from tasks.features import CLASS_NAMES, DOWN, UP, model_inputs

OUTPUTS = ("prob_down", "prob_flat", "prob_up", "signal")


class FuzzyInput(BaseModel):
    """One membership degree fed to the model: ``fuzzy.<source>.<name>``."""

    source: str  # the reference it reads: a price field or an indicator output ("macd_1.hist")
    name: str  # the set's name
    membership: Membership

    @property
    def reference(self) -> str:
        return f"fuzzy.{self.source}.{self.name}"


class DenseLayer(BaseModel):
    """``y = weights @ x + biases``; ``weights`` row-major, one row per output unit: [out][in]."""

    weights: list[list[float]]
    biases: list[float]


class InlinedModel(BaseModel):
    """Everything an export needs to compute ``model.*`` without PyTorch.

    The model's input vector is every input in ``inputs`` at bar t, then all of them again at t-1, ...,
    down to t-(lookback-1) (``tasks.features.model_inputs``). Hidden layers apply
    ``hidden_activation``; the last layer gives one logit per class of ``classes``, and softmax turns
    them into probabilities. The weights are the checkpoint's float32 values, exactly, as floats."""

    inputs: list[FuzzyInput]
    lookback: int
    layers: list[DenseLayer]
    hidden_activation: Literal["relu"] = "relu"
    classes: list[str] = list(CLASS_NAMES)
    checkpoint_sha256: str

    @property
    def input_columns(self) -> list[str]:
        """The model's inputs in order, named as ``model_inputs`` names them (``fuzzy.x.y@t-1``)."""
        return [f"{i.reference}@t-{lag}" for lag in range(self.lookback) for i in self.inputs]


def fuzzy_inputs(strategy: Strategy) -> list[FuzzyInput]:
    """The strategy's membership degrees in the order of the feature frame (``membership_frame``)."""
    return [
        FuzzyInput(source=source, name=name, membership=fn)
        for source, sets in strategy.fuzzy_sets.items()
        for name, fn in sets.items()
    ]


def _state_dict(checkpoint: bytes) -> dict:
    import torch

    try:
        state = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)["state_dict"]
    except Exception as exc:  # a truncated file, another format: say so with the loader's words
        raise ValueError(
            f"checkpoint: not a Lightning checkpoint of an MLP ({type(exc).__name__}: {exc})"
        ) from exc
    return state


def _spec(strategy: Strategy) -> MLPModel:
    if not isinstance(strategy.model, MLPModel):
        raise ValueError(
            f"model: {strategy.strategy_id} has no model (model.kind is '{strategy.model.kind}')"
        )
    return strategy.model


def inline_model(strategy: Strategy, checkpoint: bytes) -> InlinedModel:
    """The checkpoint's weights with the contract's memberships, after checking that the two belong
    together: the first layer takes (fuzzy sets x lookback) inputs, the hidden layers have the
    contract's sizes and the last one gives a logit per class. A ValueError names what disagrees."""
    spec = _spec(strategy)
    inputs = fuzzy_inputs(strategy)
    state = _state_dict(checkpoint)
    found = {
        int(m.group(1)): key
        for key in state
        if (m := re.fullmatch(r"net\.layers\.(\d+)\.weight", key))
        and f"net.layers.{m.group(1)}.bias" in state
    }
    keys = [found[i] for i in sorted(found)]
    if not keys:
        raise ValueError("checkpoint: no layers 'net.layers.<i>.weight'; not a checkpoint of tasks.train.MLP")
    shapes = [tuple(state[k].shape) for k in keys]
    n_inputs = len(inputs) * spec.lookback
    if len(shapes[0]) != 2 or shapes[0][1] != n_inputs:
        raise ValueError(
            f"checkpoint: the first layer takes {shapes[0][-1]} inputs; the contract gives {n_inputs} "
            f"({len(inputs)} fuzzy sets x model.lookback {spec.lookback})"
        )
    hidden = [s[0] for s in shapes[:-1]]
    if hidden != list(spec.hidden_layers):
        raise ValueError(
            f"checkpoint: hidden layers {hidden}; the contract's model.hidden_layers is {list(spec.hidden_layers)}"
        )
    for i, (shape, width) in enumerate(zip(shapes[1:], hidden, strict=True), start=1):
        if shape[1] != width:
            raise ValueError(f"checkpoint: layer {i} takes {shape[1]} inputs; layer {i - 1} gives {width}")
    if shapes[-1][0] != len(CLASS_NAMES):
        raise ValueError(
            f"checkpoint: the last layer gives {shapes[-1][0]} outputs; the model has {len(CLASS_NAMES)} "
            f"classes ({'/'.join(CLASS_NAMES)})"
        )
    layers = [
        DenseLayer(
            weights=state[k].double().tolist(),
            biases=state[k.replace(".weight", ".bias")].double().tolist(),
        )
        for k in keys
    ]
    return InlinedModel(
        inputs=inputs,
        lookback=spec.lookback,
        layers=layers,
        checkpoint_sha256=hashlib.sha256(checkpoint).hexdigest(),
    )


def engine_outputs(strategy: Strategy, checkpoint: bytes, features: pd.DataFrame) -> pd.DataFrame:
    """The engine's own ``model.*`` per bar (prob_down, prob_flat, prob_up, signal; NaN until every input
    is defined): the network of ``tasks.train`` rebuilt, the checkpoint loaded, ``predict`` run on
    ``model_inputs`` of the feature frame. This is what backtests trade on, so it is the reference that
    :func:`forward` and every export are compared with."""
    from tasks.train import MLP, predict

    spec = _spec(strategy)
    inline_model(strategy, checkpoint)  # the shapes agree, or a ValueError names what does not
    inputs = model_inputs(features, spec.lookback)
    net = MLP(inputs.shape[1], spec.hidden_layers, spec.dropout)
    state = _state_dict(checkpoint)
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
    return predict(net, inputs)


def forward(model: InlinedModel, features: pd.DataFrame) -> pd.DataFrame:
    """What an export computes, in float64 numpy from the inlined numbers only: each membership degree
    from its source column of ``features`` (NaN where the source is), the lagged input vector, the
    dense layers with ReLU between them, softmax, and ``signal`` (+1 up, -1 down, 0 flat: the first
    most probable class, as ``argmax``). NaN on every bar where an input is NaN.

    It exists to check the inlined model against :func:`engine_outputs` without any target's tools;
    the engine runs float32, so the two agree to about 1e-7."""
    degrees = np.column_stack(
        [
            np.where(np.isnan(x), np.nan, i.membership.degree(x))
            for i in model.inputs
            for x in [features[i.source].to_numpy(dtype=float)]
        ]
    )
    n = len(features)
    lagged = []
    for lag in range(model.lookback):
        shifted = np.full_like(degrees, np.nan)
        shifted[lag:] = degrees[: n - lag] if lag else degrees
        lagged.append(shifted)
    x = np.concatenate(lagged, axis=1)
    ready = ~np.isnan(x).any(axis=1)
    h = x[ready]
    for i, layer in enumerate(model.layers):
        h = h @ np.asarray(layer.weights, dtype=np.float64).T + np.asarray(layer.biases, dtype=np.float64)
        if i < len(model.layers) - 1:
            h = np.maximum(h, 0.0)
    z = np.exp(h - h.max(axis=1, keepdims=True))
    probs = z / z.sum(axis=1, keepdims=True)
    out = np.full((n, len(OUTPUTS)), np.nan)
    out[ready, :3] = probs  # the classes are CLASS_NAMES: down, flat, up
    best = probs.argmax(axis=1)
    out[ready, 3] = np.where(best == UP, 1.0, np.where(best == DOWN, -1.0, 0.0))
    return pd.DataFrame(out, index=features.index, columns=list(OUTPUTS))

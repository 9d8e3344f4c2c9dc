"""Train the strategy's MLP with PyTorch Lightning on fuzzy-membership features.

Splits are time-ordered with an embargo (``tasks/splits.py``), seeds are fixed and Lightning runs in
deterministic mode, so the same contract, data and seed give the same metrics. Gates read validation
metrics; the test part is only scored for the record, never used to choose anything.
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pydantic import BaseModel
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from strategy_contract.models import MLPModel, Strategy
from tasks.features import CLASS_NAMES, DOWN, UP, make_labels, model_inputs
from tasks.splits import SplitBounds

logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*GPU available.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")


class EpochMetrics(BaseModel):
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float


class TrainingMetrics(BaseModel):
    """What the training gate reads, and what a person needs to judge it."""

    accuracy: float  # validation accuracy of the best checkpoint
    baseline_accuracy: float  # always predicting the training set's majority class, on validation
    test_accuracy: float  # held-out part, recorded only
    initial_loss: float  # validation loss of the untrained model
    final_loss: float  # validation loss of the best checkpoint
    loss_decrease: float  # (initial - final) / initial
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    n_features: int
    samples: dict[str, int]
    class_balance: dict[str, dict[str, float]]
    loss_curve: list[EpochMetrics]


@dataclass
class TrainingOutcome:
    metrics: TrainingMetrics
    predictions: pd.DataFrame  # prob_down, prob_flat, prob_up, signal per bar; NaN before inputs exist
    checkpoint: bytes  # the best Lightning checkpoint, to be saved as model.ckpt


class MLP(nn.Module):
    """The plain network: fully connected layers with ReLU and dropout, three output classes."""

    def __init__(self, n_inputs: int, hidden_layers: list[int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_inputs
        for size in hidden_layers:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, len(CLASS_NAMES)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DirectionClassifier(pl.LightningModule):
    """Lightning wrapper: one shared step logs ``{stage}_loss`` and ``{stage}_acc``."""

    def __init__(self, net: nn.Module, learning_rate: float):
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _common_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(dim=1) == y).float().mean()
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True)
        self.log(f"{stage}_acc", acc, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._common_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._common_step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)


class _CurveRecorder(pl.Callback):
    """Keeps the per-epoch loss curve, which Lightning only logs."""

    def __init__(self) -> None:
        self.curve: list[EpochMetrics] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        m = trainer.callback_metrics
        if "val_loss" in m:
            self.curve.append(
                EpochMetrics(
                    epoch=trainer.current_epoch + 1,
                    train_loss=float(m["train_loss"]),
                    val_loss=float(m["val_loss"]),
                    val_accuracy=float(m["val_acc"]),
                )
            )


def _tensors(x: pd.DataFrame, y: pd.Series) -> TensorDataset:
    return TensorDataset(torch.tensor(x.to_numpy(dtype=np.float32)), torch.tensor(y.to_numpy(dtype=np.int64)))


def _balance(y: pd.Series) -> dict[str, float]:
    counts = y.value_counts(normalize=True)
    return {name: round(float(counts.get(float(i), 0.0)), 4) for i, name in enumerate(CLASS_NAMES)}


def _evaluate(net: nn.Module, data: TensorDataset) -> tuple[float, float]:
    x, y = data.tensors
    net.eval()
    with torch.no_grad():
        logits = net(x)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(dim=1) == y).float().mean())


def train_model(
    strategy: Strategy, bars: pd.DataFrame, features: pd.DataFrame, bounds: SplitBounds, seed: int
) -> TrainingOutcome:
    """Fit the contract's MLP; return metrics, per-bar predictions and the best checkpoint."""
    spec = strategy.model
    if not isinstance(spec, MLPModel):
        raise ValueError(f"{strategy.strategy_id}: model.kind is '{spec.kind}'; there is nothing to train")
    pl.seed_everything(seed, workers=True, verbose=False)
    inputs = model_inputs(features, spec.lookback)
    labels = make_labels(bars["close"], spec.label)
    usable = inputs.notna().all(axis=1) & labels.notna()

    def part(bounds_pair: tuple[int, int]) -> tuple[pd.DataFrame, pd.Series]:
        rows = np.zeros(len(bars), dtype=bool)
        rows[bounds_pair[0] : bounds_pair[1]] = True
        rows &= usable.to_numpy()
        return inputs[rows], labels[rows]

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = part(bounds.train), part(bounds.validation), part(bounds.test)
    for name, y in (("train", y_tr), ("validation", y_va)):
        if len(y) < 20:
            raise ValueError(
                f"training: only {len(y)} usable {name} samples; use more data or shorter windows"
            )
    train_ds, val_ds, test_ds = _tensors(x_tr, y_tr), _tensors(x_va, y_va), _tensors(x_te, y_te)

    net = MLP(inputs.shape[1], spec.hidden_layers, spec.dropout)
    initial_loss, _ = _evaluate(net, val_ds)
    net.train()
    module = DirectionClassifier(net, spec.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train_ds, batch_size=spec.batch_size, shuffle=True, generator=generator)
    checkpoint, curve, stopped_early = _fit(module, spec, train_loader, DataLoader(val_ds, batch_size=4096))

    module.load_state_dict(
        torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)["state_dict"]
    )
    final_loss, accuracy = _evaluate(net, val_ds)
    _, test_accuracy = _evaluate(net, test_ds) if len(test_ds) else (float("nan"), float("nan"))
    majority = int(y_tr.value_counts().idxmax())
    metrics = TrainingMetrics(
        accuracy=accuracy,
        baseline_accuracy=float((y_va == majority).mean()),
        test_accuracy=test_accuracy,
        initial_loss=initial_loss,
        final_loss=final_loss,
        loss_decrease=(initial_loss - final_loss) / initial_loss,
        epochs_run=len(curve),
        best_epoch=min(curve, key=lambda e: e.val_loss).epoch if curve else 0,
        stopped_early=stopped_early,
        n_features=inputs.shape[1],
        samples={"train": len(y_tr), "validation": len(y_va), "test": len(y_te)},
        class_balance={"train": _balance(y_tr), "validation": _balance(y_va), "test": _balance(y_te)},
        loss_curve=curve,
    )
    return TrainingOutcome(metrics=metrics, predictions=predict(net, inputs), checkpoint=checkpoint)


def _fit(
    module: DirectionClassifier, spec: MLPModel, train_loader: DataLoader, val_loader: DataLoader
) -> tuple[bytes, list[EpochMetrics], bool]:
    """Run Lightning with early stopping; return the best checkpoint's bytes, the curve, and whether it
    stopped early. Checkpoints live in a private temporary folder."""
    with tempfile.TemporaryDirectory(prefix="stratlab-train-") as workdir:
        checkpoint_cb = pl.callbacks.ModelCheckpoint(
            dirpath=workdir,
            filename="model",
            monitor="val_loss",
            mode="min",
            save_top_k=1,
            enable_version_counter=False,
        )
        stopper = pl.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=spec.patience)
        recorder = _CurveRecorder()
        trainer = pl.Trainer(
            max_epochs=spec.epochs,
            accelerator="cpu",
            devices=1,
            deterministic=True,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[checkpoint_cb, stopper, recorder],
            default_root_dir=workdir,
        )
        trainer.fit(module, train_loader, val_loader)
        return Path(checkpoint_cb.best_model_path).read_bytes(), recorder.curve, stopper.stopped_epoch > 0


def predict(net: nn.Module, inputs: pd.DataFrame) -> pd.DataFrame:
    """Class probabilities and direction per bar, from that bar's inputs only."""
    out = pd.DataFrame(np.nan, index=inputs.index, columns=["prob_down", "prob_flat", "prob_up", "signal"])
    ready = inputs.notna().all(axis=1).to_numpy()
    if ready.any():
        net.eval()
        with torch.no_grad():
            probs = torch.softmax(net(torch.tensor(inputs[ready].to_numpy(dtype=np.float32))), dim=1).numpy()
        out.loc[ready, ["prob_down", "prob_flat", "prob_up"]] = probs
        direction = probs.argmax(axis=1)
        out.loc[ready, "signal"] = np.where(direction == UP, 1.0, np.where(direction == DOWN, -1.0, 0.0))
    return out


# --- Prefect edge -------------------------------------------------------------------------------
from tasks.edge import cached_step  # noqa: E402

train = cached_step(train_model, "train")

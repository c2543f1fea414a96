"""The LightningModule of the customer models: BCE for a churn / purchase probability, squared error
for an expected value (the conditional mean, which is what a budget is planned with).

Validation is one pass over every validation customer, so the monitored score (log loss, or MAE
for value) is the whole set's, not an average of batch scores.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from recsys.metrics.classification import binary_auc, log_loss
from recsys.models.components.customer_net import CustomerNet

TARGETS = {"churned": "binary", "purchased": "binary", "value_next": "value"}


class CustomerModule(pl.LightningModule):
    """target: a label column of the customer table (`churned`, `purchased`, `value_next`).
    value_scale: the training mean of the value target; the net predicts value / value_scale so
    the loss is of order one whatever the currency."""

    def __init__(
        self,
        net: CustomerNet,
        optimizer: Callable[..., torch.optim.Optimizer],
        target: str = "churned",
        monitor: str = "val/log_loss",
        value_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {sorted(TARGETS)}, got {target!r}")
        self.save_hyperparameters(ignore=["net", "optimizer"])
        self.net, self.optimizer_factory = net, optimizer
        self.kind = TARGETS[target]

    def forward(self, numeric: Tensor, categorical: Tensor) -> Tensor:
        """Logits (binary targets) or predicted values in the target's units."""
        out = self.net(numeric, categorical)
        return out if self.kind == "binary" else F.softplus(out) * self.hparams.value_scale

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(out, y)
        return F.mse_loss(out / self.hparams.value_scale, y / self.hparams.value_scale)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        numeric, categorical, y = batch
        loss = self.loss(self(numeric, categorical), y)
        self.log(
            "train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=y.numel()
        )
        return loss

    def _evaluate(self, batch, stage: str) -> None:
        numeric, categorical, y = batch
        out = self(numeric, categorical).float()
        metrics = {"loss": self.loss(out, y)}
        if self.kind == "binary":
            metrics["log_loss"] = log_loss(torch.sigmoid(out), y)
            metrics["auc"] = binary_auc(out, y)
        else:
            metrics["mae"] = (out - y).abs().mean()
            metrics["rmse"] = (out - y).pow(2).mean().sqrt()
        for name, value in metrics.items():
            self.log(
                f"{stage}/{name}", value, prog_bar=name in ("log_loss", "mae"), batch_size=y.numel()
            )

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "raw_test")  # before calibration; the run's test/* come after it

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())

    @torch.no_grad()
    def predict_outputs(self, numeric: Tensor, categorical: Tensor) -> Tensor:
        """Outputs in eval mode (no dropout); the module's mode is left as it was."""
        was_training = self.training
        self.eval()
        try:
            return self(numeric.to(self.device), categorical.to(self.device)).float().cpu()
        finally:
            self.train(was_training)

"""Divergence stops the run: a non-finite training loss or non-finite weights end training with a
`TrainingError` naming the epoch, the batch and the last finite checkpoint, before any checkpoint
of those weights is saved (best or last) and before validation ranks with them.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor

from recsys.errors import TrainingError


class DivergenceGuard(pl.Callback):
    """Watches the loss on the device and checks weights where a checkpoint could be saved.

    Per batch it only updates a device-side record of the first batch whose running loss sum went
    non-finite (NaN and inf stay non-finite in a sum): a few tiny kernels, no host sync, so the
    hot path keeps its speed. The record and the weights are read on the host once before each
    validation and at each epoch end; Lightning runs checkpoint callbacks after all others in a
    hook, so these checks come before every save.
    """

    def __init__(self) -> None:
        self._batches: Tensor | None = None  # batches seen this epoch (on the device)
        self._first_bad: Tensor | None = None  # index of the first non-finite batch, -1 while none

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._batches = torch.zeros((), dtype=torch.long, device=pl_module.device)
        self._first_bad = torch.full((), -1, dtype=torch.long, device=pl_module.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        total = pl_module.running_total("train/loss")
        if total is None or self._batches is None:
            return
        newly_bad = (self._first_bad < 0) & ~torch.isfinite(total)
        self._first_bad = torch.where(newly_bad, self._batches, self._first_bad)
        self._batches += 1

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self.check(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer, pl_module)

    def check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        first_bad = int(self._first_bad) if self._first_bad is not None else -1  # one sync
        params = [p.detach() for p in pl_module.parameters()]
        finite = (
            bool(torch.stack([torch.isfinite(p).all() for p in params]).all()) if params else True
        )
        if first_bad < 0 and finite:
            return
        what = (
            f"non-finite training loss from batch {first_bad}"
            if first_bad >= 0
            else "non-finite weights"
        )
        raise TrainingError(
            f"training diverged in epoch {trainer.current_epoch} ({what}; global step "
            f"{trainer.global_step}); last finite checkpoint: {last_finite_checkpoint(trainer)}; "
            "lower model.module.optimizer.lr or set model.module.gradient_clip_val"
        )


def last_finite_checkpoint(trainer: pl.Trainer) -> str:
    """The newest checkpoint this run saved: every one was checked finite before it was written."""
    paths = {
        Path(p)
        for cb in trainer.callbacks
        if isinstance(cb, ModelCheckpoint)
        for p in (cb.last_model_path, cb.best_model_path)
        if p
    }
    existing = [p for p in paths if p.is_file()]
    return str(max(existing, key=lambda p: p.stat().st_mtime)) if existing else "none saved"

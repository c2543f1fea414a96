"""Small Lightning callbacks recsys adds to every run."""

from __future__ import annotations

import statistics
import time

import pytorch_lightning as pl
import torch


class EpochTimer(pl.Callback):
    """Wall time of each training epoch (validation excluded) and training rows per second.

    Synchronises the device once per epoch, never per step. The median over epochs goes to
    metrics.json as `time/train_epoch_s` and `time/train_rows_per_s`.
    """

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.rows_per_epoch = 0
        self._start = 0.0

    def _sync(self, pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(pl_module)
        seconds = time.perf_counter() - self._start
        self.epoch_seconds.append(seconds)
        self.rows_per_epoch = getattr(trainer.train_dataloader, "num_rows", 0)
        pl_module.log("time/train_epoch_s", seconds, on_step=False, on_epoch=True)

    def summary(self) -> dict[str, float]:
        if not self.epoch_seconds:
            return {}
        # The first epoch pays for warm-up (allocations, kernels); report the steady state where possible.
        steady = self.epoch_seconds[1:] or self.epoch_seconds
        median = statistics.median(steady)
        return {"time/train_epoch_s": median, "time/train_rows_per_s": self.rows_per_epoch / median}

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
        self._start: float | None = None  # None while the clock is paused (validation)
        self._seconds: float | None = None  # training seconds of the epoch so far

    def _sync(self, pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(pl_module)
        self._seconds, self._start = 0.0, time.perf_counter()

    # Lightning validates inside the training epoch (before on_train_epoch_end): pause the clock.
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._start is not None:
            self._sync(pl_module)
            self._seconds += time.perf_counter() - self._start
            self._start = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._seconds is not None:  # inside a training epoch (not the sanity check)
            self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(pl_module)
        seconds = self._seconds
        if self._start is not None:
            seconds += time.perf_counter() - self._start
        self._seconds, self._start = None, None
        self.epoch_seconds.append(seconds)
        self.rows_per_epoch = trainer.train_dataloader.num_rows  # a TrainBatches (data/loaders.py)
        pl_module.log("time/train_epoch_s", seconds, on_step=False, on_epoch=True)

    def summary(self) -> dict[str, float]:
        if not self.epoch_seconds:
            return {}
        # The first epoch pays for warm-up (allocations, kernels); report the steady state where possible.
        steady = self.epoch_seconds[1:] or self.epoch_seconds
        median = statistics.median(steady)
        return {"time/train_epoch_s": median, "time/train_rows_per_s": self.rows_per_epoch / median}

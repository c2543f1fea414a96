"""Reports that run once the test has: on the weights it tested and the data the run already holds.

Each report is a Lightning callback; `train` collects their `metrics` into metrics.json. They run on
global rank 0 only (the test metrics are already gathered over all ranks there).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from recsys.data.datamodule import InteractionDataModule
from recsys.models.retrieval import RetrievalModule


class RunReport(pl.Callback):
    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        was_training = pl_module.training
        pl_module.eval()
        # Lightning tests under inference mode; a report may fit something (calibration) with autograd.
        with torch.inference_mode(False), torch.enable_grad():
            self.metrics = self.report(trainer, pl_module, trainer.datamodule)
        pl_module.train(was_training)

    def report(
        self, trainer: pl.Trainer, module: RetrievalModule, datamodule: InteractionDataModule
    ) -> dict[str, float]:
        raise NotImplementedError

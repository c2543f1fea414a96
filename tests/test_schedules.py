"""Learning-rate schedules step where they ask to: per optimizer step or per epoch."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from recsys.optim.schedules import warmup_cosine
from recsys.train import train


class LearningRates(pl.Callback):
    """The lr every optimizer step used, read from a post-step hook on the real optimizer."""

    def __init__(self) -> None:
        self.used: list[float] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.optimizers[0].register_step_post_hook(
            lambda opt, args, kwargs: self.used.append(opt.param_groups[0]["lr"])
        )


def expected(step: int, lr: float, warmup: int, total: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("steps_per_batch", [1, 3])
def test_warmup_cosine_steps_per_optimizer_step(tiny_cfg, steps_per_batch, monkeypatch):
    cfg = tiny_cfg(
        "scheduler=warmup_cosine",
        "model.module.scheduler.warmup_steps=5",
        f"data.loader.steps_per_batch={steps_per_batch}",
        "data.loader.batch_size=256",
        "callbacks.early_stopping=null",
    )
    used, objects = train_recording_lrs(cfg, monkeypatch)
    lr = cfg.model.module.optimizer.lr
    steps = len(used)
    # Two epochs of the tiny world in batches of 256: several times the 5 warm-up steps.
    assert steps > 20
    batches = objects["trainer"].num_training_batches * cfg.trainer.max_epochs
    total = batches * steps_per_batch  # what the module told the schedule
    want = [expected(s, lr, 5, total) for s in range(steps)]
    assert used == pytest.approx(want, rel=1e-6)
    assert used[0] == pytest.approx(lr / 5)  # the warm-up changes within the first batch


def test_epoch_interval_steps_once_an_epoch(tiny_cfg, monkeypatch):
    cfg = tiny_cfg(
        "+model.module.scheduler={_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 1, gamma: 0.5}",
        "callbacks.early_stopping=null",
    )
    used, _ = train_recording_lrs(cfg, monkeypatch)
    lr = cfg.model.module.optimizer.lr
    per_epoch = len(used) // cfg.trainer.max_epochs
    assert used[:per_epoch] == [lr] * per_epoch
    assert used[per_epoch:] == [lr * 0.5] * (len(used) - per_epoch)


def test_warmup_cosine_refuses_bad_arguments():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="total_steps"):
        warmup_cosine(opt, total_steps=0)
    with pytest.raises(ValueError, match="min_lr_ratio"):
        warmup_cosine(opt, total_steps=10, min_lr_ratio=2.0)


def train_recording_lrs(cfg, monkeypatch) -> tuple[list[float], dict]:
    """Train with `LearningRates` added to the run's callbacks; (lr of every step, objects)."""
    seen = LearningRates()
    init = pl.Trainer.__init__

    def patched(self, *args, callbacks=None, **kwargs):
        init(self, *args, callbacks=[*(callbacks or []), seen], **kwargs)

    monkeypatch.setattr(pl.Trainer, "__init__", patched)
    _, objects = train(cfg)
    return seen.used, objects

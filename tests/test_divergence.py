"""Divergence stops the run (recsys/divergence.py): an exploding learning rate ends in a
TrainingError naming the epoch, never in a NaN "best" checkpoint and finite-looking metrics."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from recsys.errors import ConfigError, TrainingError
from recsys.metrics.evaluate import rank_batch
from recsys.models.components.mf import MatrixFactorization
from recsys.train import train
from tests.conftest import TINY, compose_config


def test_exploding_learning_rate_stops_the_run(tmp_path):
    run = tmp_path / "run"
    cfg = compose_config([*TINY, "model.module.optimizer.lr=1e20"], run)
    with pytest.raises(TrainingError, match=r"diverged in epoch 0 .*last finite checkpoint: none"):
        train(cfg)
    assert not (run / "metrics.json").exists()
    for ckpt in run.rglob("*.ckpt"):  # none expected; any there must hold finite weights
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt


@pytest.mark.parametrize("lr", ["inf", "-inf", "nan", "-0.1"])
def test_learning_rate_that_can_only_diverge_is_refused_before_training(lr, tmp_path):
    cfg = compose_config([*TINY, f"model.module.optimizer.lr={lr}"], tmp_path / "run")
    with pytest.raises(ConfigError, match=f"model.module.optimizer.lr={lr}: must be a finite"):
        train(cfg)
    assert not (tmp_path / "run").exists()


class PoisonWeights(pl.Callback):
    """Makes the weights infinite at the start of epoch 1: a run that diverges after a good epoch."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 1:
            with torch.no_grad():
                for p in pl_module.scorer.parameters():
                    p.fill_(float("inf"))


def test_divergence_after_a_good_epoch_keeps_that_epoch_as_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    poison = "+callbacks.poison._target_=tests.test_divergence.PoisonWeights"
    cfg = compose_config([*TINY, "trainer.max_epochs=3", poison], run)
    last = run / "checkpoints" / "last.ckpt"
    with pytest.raises(
        TrainingError, match=f"diverged in epoch 1 .*last finite checkpoint: {last}"
    ):
        train(cfg)
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        assert saved["epoch"] == 0, ckpt
        assert all(torch.isfinite(v).all() for v in saved["state_dict"].values()), ckpt


def test_non_finite_scores_are_never_ranked():
    scorer = MatrixFactorization(num_users=3, num_items=5, dim=2)
    with torch.no_grad():
        scorer.user_table.weight[1] = float("nan")
    empty = torch.zeros(0, dtype=torch.long)
    batch = {"users": torch.tensor([0, 1]), "exclude_rows": empty, "exclude_items": empty}
    with pytest.raises(TrainingError, match="non-finite scores while ranking the test split"):
        rank_batch(scorer, batch, 2, "test")

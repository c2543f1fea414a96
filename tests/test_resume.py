"""Resuming (recsys/resume.py, recsys/run_identity.py): last.ckpt is the last epoch, a resume takes
the run's own config, and a checkpoint is never paired with other data or another model."""

from __future__ import annotations

import shutil

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from recsys.errors import RunError
from recsys.run_dir import RunDir
from recsys.train import train
from tests.conftest import TINY, compose_config
from tests.hydra_support import command_line

RUN = [*TINY, "model.dim=16"]  # a run with an override the defaults lack


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("resume") / "run"
    train(compose_config(RUN, run))
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def test_last_checkpoint_is_the_last_epoch_not_the_best(tmp_path):
    run = tmp_path / "run"
    # mode=min makes the first epoch the "best": last.ckpt used to be refreshed only with it.
    train(
        compose_config([*TINY, "trainer.max_epochs=3", "callbacks.model_checkpoint.mode=min"], run)
    )
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 2


class Crash(Exception):
    """Stands in for kill -9: the process stops mid-epoch, no checkpoint of that epoch is saved."""


class CrashInEpoch(pl.Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch:  # after an optimizer step, before the epoch ends
            raise Crash


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    full, _ = train(compose_config([*TINY, "trainer.max_epochs=4"], tmp_path / "full"))
    crash = ["+callbacks.crash._target_=tests.test_resume.CrashInEpoch", "+callbacks.crash.epoch=2"]
    with pytest.raises(Crash):
        train(compose_config([*TINY, "trainer.max_epochs=4", *crash], tmp_path / "part"))
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 1
    resumed, _ = train(
        compose_config([*TINY, "trainer.max_epochs=4", f"ckpt_path={last}"], tmp_path / "part")
    )
    assert {k: v for k, v in resumed.items() if k.startswith("test/")} == {
        k: v for k, v in full.items() if k.startswith("test/")
    }


def test_resume_without_the_runs_overrides_restores_its_config(run):
    overrides = [*TINY, "trainer.max_epochs=3", f"ckpt_path={run}/checkpoints/last.ckpt"]
    with command_line(*overrides):
        metrics, objects = train(compose_config(overrides, run))
    assert objects["module"].scorer.user_table.embedding_dim == 16
    assert OmegaConf.load(run / ".hydra" / "resolved.yaml").model.dim == 16
    assert metrics["epochs"] == 3


def test_resume_keeps_the_runs_epochs_and_callbacks_under_a_key_the_user_sets(run):
    # The run trained 2 epochs (TINY); the default is 30. Only the progress bar is the user's.
    data = [o for o in TINY if o.startswith("data.")]
    overrides = [
        *data,
        "trainer.enable_progress_bar=false",
        f"ckpt_path={run}/checkpoints/last.ckpt",
    ]
    with command_line(*overrides):
        metrics, _ = train(compose_config(overrides, run))
    resolved = OmegaConf.load(run / ".hydra" / "resolved.yaml")
    assert resolved.trainer.max_epochs == 2 and resolved.trainer.enable_progress_bar is False
    assert resolved.callbacks.progress_bar is None and metrics["epochs"] == 2


def test_resume_past_max_epochs_says_what_to_raise(run):
    # As a run early-stopped after 5 epochs of a 100-epoch recipe, resumed under 2 epochs.
    last = run / "checkpoints" / "last.ckpt"
    torch.save({**torch.load(last, weights_only=True), "epoch": 5}, last)
    overrides = [*TINY, f"ckpt_path={last}"]
    match = r"saved at epoch 5, past trainer.max_epochs=2; set trainer.max_epochs to 5 or more"
    with command_line(*overrides), pytest.raises(RunError, match=match):
        train(compose_config(overrides, run))


def test_command_line_asking_for_another_model_is_refused_before_training(run):
    before = (run / "metrics.json").read_bytes()
    overrides = [*TINY, "model.dim=8", f"ckpt_path={run}/checkpoints/last.ckpt"]
    with command_line(*overrides), pytest.raises(RunError, match=r"model.scorer.dim=16 \(now 8\)"):
        train(compose_config(overrides, run))
    assert (run / "metrics.json").read_bytes() == before


def test_library_resume_names_the_keys_the_checkpoint_needs(run, tmp_path):
    ckpt = f"ckpt_path={run}/checkpoints/last.ckpt"
    with pytest.raises(RunError, match=r"model.scorer.dim=16 \(now 64\)"):
        train(compose_config([*TINY, ckpt], tmp_path / "new"))
    assert not (tmp_path / "new").exists()


def test_resume_with_other_data_fails_before_training(run, tmp_path):
    ckpt = f"ckpt_path={run}/checkpoints/last.ckpt"
    with pytest.raises(RunError, match="trained on other data"):
        train(compose_config([*RUN, "seed=7", ckpt], tmp_path / "new"))
    assert not (tmp_path / "new").exists()


def test_ckpt_path_that_is_no_file_is_named(tmp_path):
    with pytest.raises(RunError, match="ckpt_path=.*nowhere.ckpt: no such checkpoint file"):
        train(compose_config([*TINY, f"ckpt_path={tmp_path}/nowhere.ckpt"], tmp_path / "run"))


def test_loading_refuses_a_checkpoint_trained_on_other_data(run, tmp_path):
    other = tmp_path / "other"
    train(compose_config([*RUN, "seed=7", "trainer.max_epochs=1"], other))
    with pytest.raises(RunError, match="trained on other data than this run directory"):
        RunDir(run).load_scorer(other / "checkpoints" / "last.ckpt")
    scorer, _ = RunDir(run).load_scorer("last")  # its own checkpoint still loads
    assert scorer.num_items == 200


def test_checkpoint_without_identity_is_still_checked_by_shape(run, tmp_path):
    """Checkpoints saved before they carried an identity: a wrong model is named, not dumped."""
    old = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    del old["recsys_identity"]
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(RunError, match=r"scorer.user_table.weight \(300, 16\) \(now \(300, 8\)\)"):
        train(
            compose_config([*TINY, "model.dim=8", f"ckpt_path={tmp_path}/old.ckpt"], tmp_path / "n")
        )

"""What sweepers optimise (`recsys.train.objective`): a recipe without a best checkpoint names a
metric its runs have, and a missing one is a one-line ConfigError, not a KeyError after training."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import open_dict

from recsys.errors import ConfigError
from recsys.sweeps import trial
from recsys.sweeps.trial import run_trial
from recsys.train import objective
from tests.conftest import ROOT, TINY, compose_config


def test_recipe_without_best_checkpoint_returns_its_objective(tmp_path):
    overrides = [*TINY, "experiment=synthetic_propensity", "trainer.max_epochs=1"]
    cfg = compose_config(overrides, tmp_path / "run")
    value = run_trial(cfg, script=ROOT / "scripts" / "train.py")
    assert cfg.optimized_metric == "last/val/ndcg@10"
    assert 0.0 < value <= 1.0
    assert (Path(tmp_path) / "run" / "metrics.json").is_file()


def test_missing_optimized_metric_is_named_with_what_the_run_has(tmp_path):
    cfg = compose_config(TINY, tmp_path / "run")
    with open_dict(cfg):
        cfg.optimized_metric = "best/val/nope"
    metrics = {"last/val/ndcg@10": 0.1, "test/ndcg@10": 0.1}
    with pytest.raises(ConfigError, match=r"optimized_metric='best/val/nope'.*last/val/ndcg@10"):
        objective(metrics, cfg)


def test_single_run_lacking_the_metric_still_succeeds(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(trial, "train", lambda cfg: ({"test/ndcg@10": 0.1}, {}))
    cfg = compose_config(TINY, tmp_path / "run")
    value = run_trial(cfg, script=ROOT / "scripts" / "train.py")
    assert value != value  # NaN: nothing to optimise, but the run did what was asked
    assert "optimized_metric='best/val/ndcg@10'" in caplog.text

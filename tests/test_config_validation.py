"""A config that cannot train fails when it is composed, in one line naming the key: values out of range,
wrong types, unknown keys (with the key it was probably meant to be), and Hydra's own errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from recsys.config import check_config, check_train_config, config_problems
from recsys.config.hydra_errors import composing
from recsys.errors import ConfigError
from recsys.train import train
from tests.conftest import CONF, TINY, compose_config


def problem(tmp_path, *overrides: str) -> str:
    """The one line check_train_config raises for `train` composed with `overrides`."""
    cfg = compose_config([*TINY, *overrides], tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        check_train_config(cfg)
    message = str(err.value)
    assert "\n" not in message
    return message


OUT_OF_RANGE = [  # (overrides, the key the message must name, a word of the allowed range)
    (["model.dim=0"], "model.dim", ">= 1"),
    (["model=two_tower", "model.scorer.id_dim=0"], "model.scorer.id_dim", ">= 1"),
    (["model=two_tower", "model.scorer.feature_dim=-4"], "model.scorer.feature_dim", ">= 1"),
    (["data.loader.batch_size=0"], "data.loader.batch_size", ">= 1"),
    (["data.loader.num_negatives=-1"], "data.loader.num_negatives", ">= 0"),
    (["model.module.ks=[0,10]"], "model.module.ks", ">= 1"),
    (["model.module.ks=[]"], "model.module.ks", "non-empty"),
    (["model.module.embedding_l2=-0.1"], "model.module.embedding_l2", ">= 0"),
    (["model=two_tower", "model.module.optimizer.weight_decay=-1"], "model.module.optimizer.weight_decay", ">= 0"),
    (["trainer.max_epochs=0"], "trainer.max_epochs", "-1"),
    (["trainer.max_epochs=-2"], "trainer.max_epochs", "-1"),
    (["model.module.optimizer.lr=-0.01"], "model.module.optimizer.lr", "> 0"),
    (["model.module.optimizer.lr=0"], "model.module.optimizer.lr", "> 0"),
    (["data.loader.negative_sampling=popularity", "data.loader.negative_alpha=1.5"], "data.loader.negative_alpha", "[0, 1]"),
    (["model=two_tower", "model.scorer.dropout=1.0"], "model.scorer.dropout", "[0, 1)"),
    (["model=mf_propensity", "model.scorer.dropout=-0.1"], "model.scorer.dropout", "[0, 1)"),
    (["model.losses.softmax.temperature=0"], "model.losses.softmax.temperature", "> 0"),
    (["data.loader.batch_size=1e999"], "data.loader.batch_size", ">= 1"),
    (["model.module.optimizer.lr=nan"], "model.module.optimizer.lr", "finite"),
]  # fmt: skip


@pytest.mark.parametrize("overrides,key,allowed", OUT_OF_RANGE, ids=[c[1] for c in OUT_OF_RANGE])
def test_value_out_of_range_names_the_key_and_the_range(tmp_path, overrides, key, allowed):
    message = problem(tmp_path, *overrides)
    assert key in message and allowed in message, message


def test_pairwise_loss_without_negatives_is_refused_but_inbatch_softmax_is_not(tmp_path):
    message = problem(tmp_path, "model.loss=bpr", "data.loader.num_negatives=0")
    assert "data.loader.num_negatives" in message and "bpr" in message
    two_tower = compose_config([*TINY, "model=two_tower", "data.loader.num_negatives=0"], tmp_path)
    check_train_config(two_tower)  # in-batch softmax needs no sampled negatives


def test_loss_must_name_an_entry_of_losses(tmp_path):
    assert "model.loss='bprr'" in problem(tmp_path, "model.loss=bprr")


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["trainer.max_epochs=abc"], "trainer.max_epochs"),
        (["model.dim=abc"], "model.dim"),
        (["data.loader.num_negatives=2.5"], "data.loader.num_negatives"),
        (["model.scorer.item_bias=maybe"], "model.scorer.item_bias"),
        (["retain_freed_memory=maybe"], "retain_freed_memory"),
    ],
)
def test_wrong_type_names_the_key(tmp_path, overrides, key):
    message = problem(tmp_path, *overrides)
    assert message.startswith(f"{key}=") or f" {key}=" in message, message


@pytest.mark.parametrize(
    "override,message",
    [
        ("+model.dimm=8", "unknown key model.dimm (did you mean model.dim?)"),
        ("+model.scorer.dimm=8", "unknown key model.scorer.dimm: MatrixFactorization takes"),
        ("+data.loader.batch_sise=8", "unknown key data.loader.batch_sise"),
        ("+callbacks.early_stoping.patience=3", "did you mean callbacks.early_stopping?"),
        ("+seeed=1", "unknown key seeed (did you mean seed?)"),
        (
            "+model.module.optimizer.lrr=1",
            "(did you mean model.module.optimizer.lr?)",
        ),  # via **kwargs
        ("+model.module.optimizer.amsgrad=true", None),  # torch.optim.Adam takes it
    ],
)
def test_unknown_key_is_named_with_a_suggestion(tmp_path, override, message):
    cfg = compose_config([*TINY, override], tmp_path)
    problems = config_problems(cfg)
    if message is None:
        assert problems == []
    else:
        assert len(problems) == 1 and message in problems[0], problems


def test_a_value_read_through_an_interpolation_names_its_source(tmp_path):
    """model.base.dim feeds model.dim and both scorers' dims: one line, naming the key the user set."""
    message = problem(tmp_path, "model=mf_propensity", "model.base.dim=0")
    assert message == "model.base.dim=0: must be an integer >= 1", message
    message = problem(tmp_path, "model=mf_propensity", "model.dim=abc")
    assert "model.dim" in message


def test_train_refuses_a_bad_config_before_touching_the_run_directory(tmp_path):
    cfg = compose_config([*TINY, "model.dim=0"], tmp_path / "run")
    with pytest.raises(ConfigError, match="model.dim"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_values_at_the_edges_of_their_ranges_pass(tmp_path):
    edges = ["trainer.max_epochs=-1", "data.loader.num_negatives=1", "model.module.embedding_l2=0",
             "model.module.ks=[1]", "data.loader.negative_sampling=popularity",
             "data.loader.negative_alpha=0", "model.dim=1"]  # fmt: skip
    cfg = compose_config([*TINY, *edges], tmp_path)
    check_train_config(cfg)
    assert OmegaConf.select(cfg, "model.scorer.dim") == 1


@pytest.mark.parametrize(
    "override,message",
    [
        ("model=mff", "model=mff: no such option in conf/model (did you mean mf?)"),
        ("model.dimm=8", "unknown key model.dimm (did you mean model.dim?)"),
        ("model.dim=[1,", "override 'model.dim=[1,'"),
    ],
)
def test_hydra_composition_errors_become_one_line(tmp_path, override, message):
    with pytest.raises(ConfigError) as err, composing():
        compose_config([override], tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "entry,overrides,key",
    [
        ("segment", ["run_dir=r", "k=abc"], "k"),
        ("segment", ["run_dir=r", "+n_inits=3"], "n_inits"),
        ("export", ["+verify.userz=3"], "verify.userz"),
        ("export", ["num_popular=0"], "num_popular"),
        ("audience", ["run_dir=r", "item=5", "size=0"], "size"),
        ("audience", ["run_dir=r"], "item"),
    ],
)
def test_entry_configs_are_checked_too(tmp_path, entry, overrides, key):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=entry, overrides=overrides)
    with pytest.raises(ConfigError) as err:
        check_config(cfg, entry)
    assert key in str(err.value)


def test_train_script_prints_one_line_for_a_wrong_group_option(tmp_path):
    """Hydra's own error (`model=mff`) leaves scripts/train.py as one line and exit code 2."""
    script = CONF.parent / "scripts" / "train.py"
    done = subprocess.run(
        [sys.executable, str(script), "model=mff", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(CONF.parent)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: model=mff: no such option in conf/model (did you mean mf?); "
        "available: customer_churn, customer_purchase, customer_value, mf, mf_propensity, two_tower, two_tower_propensity"
    ]
    assert not (tmp_path / "run").exists()

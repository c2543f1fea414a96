"""A run directory (or a sweep's best config) from someone else is data, never code: a `_target_`
that names anything but recsys's own classes is refused, by key and file, before it is imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from recsys.config.trusted import check_target
from recsys.errors import ConfigError
from recsys.run_dir import RunDir
from recsys.serving.exporter import export_from_config
from recsys.sweeps.summary import save_best_config
from tests.conftest import ROOT
from tests.serving_support import export_config, trained_run


@pytest.fixture(scope="module")
def mf_run(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp() / "shared", "mf")


def _with_payload(mf_run, tmp_path, key_path: list, payload: dict):
    """A copy of the run whose resolved.yaml has `payload` at `key_path` (a list of keys)."""
    run = tmp_path / "run"
    shutil.copytree(mf_run, run, ignore=shutil.ignore_patterns("export*"))
    config_path = run / ".hydra" / "resolved.yaml"
    cfg = yaml.safe_load(config_path.read_text())
    node = cfg
    for key in key_path[:-1]:
        node = node[key]
    node[key_path[-1]] = payload
    config_path.write_text(yaml.safe_dump(cfg))
    return RunDir(run)


def _open_for_writing(marker) -> dict:
    return {"_target_": "builtins.open", "file": str(marker), "mode": "w"}


READERS = {
    "load_data": lambda run: run.load_data(),
    "load_scorer": lambda run: run.load_scorer(),
    "export": lambda run: export_from_config(
        export_config(f"run_dir={run.root}", f"out_dir={run.root.parent}/e")
    ),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_payload_data_source_never_runs(mf_run, tmp_path, reader):
    marker = tmp_path / "marker"
    run = _with_payload(mf_run, tmp_path, ["data"], _open_for_writing(marker))
    with pytest.raises(ConfigError, match=r"resolved\.yaml: data\._target_='builtins\.open'"):
        READERS[reader](run)
    assert not marker.exists()
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(
    "key_path, named",
    [
        (["model", "scorer", "_target_"], "model.scorer._target_"),
        (["model", "losses", "bpr", "_target_"], "model.losses.bpr._target_"),
        (["callbacks", "epoch_timer", "_target_"], "callbacks.epoch_timer._target_"),
        (["data", "wrapped"], "data.wrapped"),
    ],
)
def test_payload_anywhere_in_the_config_is_named(mf_run, tmp_path, key_path, named):
    run = _with_payload(mf_run, tmp_path, key_path, "recsys.run_dir.shutil.rmtree")
    with pytest.raises(ConfigError, match=rf"{named}='recsys\.run_dir\.shutil\.rmtree'"):
        run.load_scorer()


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "subprocess.Popen",
        "pandas.read_pickle",
        "recsys.serving.exporter.shutil.rmtree",  # a module re-exported by a recsys module
        "recsys.serving.exporter.Path",  # a class imported into a recsys module
        "recsys.atomic_files.write_atomic",  # recsys's own file writer
        "recsys.run_dir.RunDir.write_json",  # a method, not a module-level class
        "recsys.run_dir.__builtins__",
        "${oc.env:HOME}",
    ],
)
def test_names_outside_recsys_are_refused(target):
    with pytest.raises(ConfigError, match="a saved config may only name recsys"):
        check_target("x._target_", target, "f.yaml")


def test_every_target_the_shipped_configs_use_is_allowed(mf_run):
    cfg = RunDir(mf_run).config()  # raises if one of them were refused
    assert check_target("k", "recsys.optim.adam.adam", "f") == "recsys.optim.adam.adam"
    assert cfg.model.scorer._target_ == "recsys.models.components.mf.MatrixFactorization"


def test_garbled_config_is_one_clear_error(mf_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(mf_run, run, ignore=shutil.ignore_patterns("export*"))
    (run / ".hydra" / "resolved.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"resolved\.yaml: not a readable YAML config"):
        RunDir(run).load_scorer()


def test_sweep_never_publishes_a_best_config_with_a_payload(tmp_path):
    job = tmp_path / "sweep" / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"data": {"_target_": "shutil.rmtree", "path": str(tmp_path)}})
    )
    frame = pd.DataFrame(
        [{"job": 0, "run_dir": str(job), "overrides": "", "status": "done", "val/ndcg@10": 0.5}]
    )
    with pytest.raises(ConfigError, match=r"config\.yaml: data\._target_='shutil\.rmtree'"):
        save_best_config(tmp_path / "sweep", frame, "val/ndcg@10")
    assert not (tmp_path / "sweep" / "best_config.yaml").exists()


def test_a_class_of_the_users_own_is_allowed_only_when_named_in_the_environment(monkeypatch):
    own = "tests.serving_support.MFWithPropensity"
    with pytest.raises(ConfigError, match="RECSYS_TRUSTED_TARGETS"):
        check_target("model.scorer._target_", own, "f.yaml")
    monkeypatch.setenv("RECSYS_TRUSTED_TARGETS", f"other.Thing, {own}")
    assert check_target("model.scorer._target_", own, "f.yaml") == own


@pytest.mark.slow
def test_rerunning_a_best_config_with_a_payload_stops_before_training(mf_run, tmp_path):
    """`scripts/train.py --config-path <sweep> --config-name best_config`, as docs/sweeps_multi_gpu.md says."""
    cfg = yaml.safe_load((mf_run / ".hydra" / "resolved.yaml").read_text())
    cfg["data"] = _open_for_writing(tmp_path / "marker")
    (tmp_path / "best_config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "--config-path", str(tmp_path),
           "--config-name", "best_config", f"hydra.run.dir={tmp_path}/rerun"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "best_config.yaml: data._target_='builtins.open'" in proc.stderr
    assert not (tmp_path / "marker").exists()

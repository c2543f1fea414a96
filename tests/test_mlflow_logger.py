"""`logger=mlflow`: a run read back through MLflow's own client (params, per-epoch and final
metrics, files), the export added to the same run, and what happens without MLflow installed.

A run with MLflow takes ~10 s more than without on a 2-core CPU: its new SQLite store runs
MLflow's schema migrations. The runs are the `slow` tier; the rest checks the pieces in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import recsys.tracking
from recsys.errors import ConfigError
from recsys.run_dir import RunDir
from recsys.tracking.mlflow_logger import local_store_uri, metric_name
from recsys.tracking.mlflow_run import RECORD, flatten_params, log_export, run_files
from recsys.train import train

NEEDS_MLFLOW = "needs the tracking extra: pip install -e '.[tracking]'"


def _read_back(run_dir: Path) -> tuple[object, dict, object]:
    from mlflow.tracking import MlflowClient

    record = json.loads((run_dir / RECORD).read_text())
    client = MlflowClient(tracking_uri=record["tracking_uri"])
    return client, record, client.get_run(record["run_id"])


def _check_tracked(run_dir: Path, epochs: int) -> tuple[object, str]:
    """Everything the issue asks of a tracked run, read through MLflow, not through recsys."""
    client, record, run = _read_back(run_dir)
    assert record["tracking_uri"] == local_store_uri(run_dir)  # the store sits in the run dir
    assert run.info.run_name == run_dir.name
    assert client.get_experiment(run.info.experiment_id).name == "train"  # task_name
    assert run.data.params["model.dim"] == "64"
    assert run.data.params["data.num_users"] == "300"
    assert run.data.params["trainer.max_epochs"] == str(epochs)
    saved = json.loads((run_dir / "metrics.json").read_text())
    for key, value in saved.items():  # every final value, under MLflow's name for it
        assert run.data.metrics[metric_name(key)] == pytest.approx(value, rel=1e-12), key
    assert run.data.metrics["test/ndcg_at_10"] == pytest.approx(saved["test/ndcg@10"])
    history = client.get_metric_history(run.info.run_id, "val/ndcg_at_10")
    assert len(history) == epochs
    assert len({h.step for h in history}) == epochs
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "data_report.json", "config"} <= top
    assert "config/resolved.yaml" in {
        a.path for a in client.list_artifacts(run.info.run_id, "config")
    }
    assert (run_dir / "mlartifacts").is_dir()  # artifacts stay with the run, not in the cwd
    return client, run.info.run_id


@pytest.mark.slow
def test_mlflow_run_reads_back_and_takes_the_export(tiny_cfg, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason=NEEDS_MLFLOW)
    monkeypatch.chdir(tmp_path)  # anything MLflow wrote relative to the cwd would show here
    run_dir = tmp_path / "run"
    train(tiny_cfg("logger=mlflow"))
    client, run_id = _check_tracked(run_dir, epochs=2)
    assert not (run_dir / "tensorboard").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]

    export = tmp_path / "export"  # what scripts/export.py hands over once its export is verified
    (export / "vocab").mkdir(parents=True)
    (export / "manifest.json").write_text("{}")
    (export / "vocab" / "items.txt").write_text("i1\n")
    assert log_export(run_dir, export) == run_id
    logged = {a.path for a in client.list_artifacts(run_id, "export")}
    assert logged == {"export/manifest.json", "export/vocab"}


@pytest.mark.slow
def test_tensorboard_and_mlflow_at_once(tiny_cfg, tmp_path):
    pytest.importorskip("mlflow", reason=NEEDS_MLFLOW)
    run_dir = tmp_path / "run"
    train(tiny_cfg("logger=[tensorboard,mlflow]", "trainer.max_epochs=3"))
    _check_tracked(run_dir, epochs=3)
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_logger_list_composes_both(tiny_cfg):
    both = tiny_cfg("logger=[tensorboard,mlflow]")
    assert sorted(both.logger) == ["mlflow", "tensorboard"]
    assert list(tiny_cfg("logger=mlflow").logger) == ["mlflow"]


def test_missing_mlflow_is_one_line_naming_the_extra(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(recsys.tracking, "mlflow_installed", lambda: False)
    with pytest.raises(
        ConfigError, match=r"logger\.mlflow: MLflow is not installed; .*recsys\[tracking\]"
    ):
        train(tiny_cfg("logger=[tensorboard,mlflow]"))
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before training
    for loggers, problems in (("mlflow", 1), ("tensorboard", 0)):
        tree = OmegaConf.to_container(tiny_cfg(f"logger={loggers}"))
        assert len(recsys.tracking.missing_tracking_packages(tree)) == problems


def test_params_flatten_with_mlflow_limits():
    cfg = {
        "model": {"dim": 64, "tags": ["a", "b"], "opt": {"lr": 0.01, "nested": {}}},
        "note": "x" * 50,
        "empty": None,
        "weird@key": True,
    }
    flat = flatten_params(cfg, limit=20)
    assert flat["model.dim"] == "64"
    assert flat["model.tags"] == '["a", "b"]'
    assert flat["model.opt.lr"] == "0.01"
    assert flat["model.opt.nested"] == "{}"
    assert flat["empty"] == "null"
    assert flat["weird_key"] == "true"
    assert flat["note"] == "x" * 17 + "..." and len(flat["note"]) == 20


def test_metric_names_mlflow_accepts():
    assert metric_name("val/ndcg@20") == "val/ndcg_at_20"
    assert metric_name("popularity/test/hr@10") == "popularity/test/hr_at_10"
    assert metric_name("time/train_rows_per_s") == "time/train_rows_per_s"
    assert metric_name("a+b(c)") == "a_b_c_"


def test_run_files_are_the_reports_not_the_store(tmp_path):
    for name in ("metrics.json", "data_report.json", "propensity_lift.png", "backtest.csv",
                 "train.log", "mlflow.db", RECORD, "training_state.pt"):  # fmt: skip
        (tmp_path / name).write_text("x")
    (tmp_path / "vocab").mkdir()
    names = [p.name for p in run_files(RunDir(tmp_path))]
    assert names == ["backtest.csv", "data_report.json", "metrics.json", "propensity_lift.png",
                     "train.log"]  # fmt: skip


def test_export_of_an_untracked_run_logs_nothing(tmp_path):
    assert log_export(tmp_path, tmp_path / "export") is None

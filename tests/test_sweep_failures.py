"""A failing trial ends only itself: its status and error are recorded, the other trials run, the
best config comes from those that finished, and the sweep's exit code says that some failed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from recsys.errors import DataError
from recsys.sweeps.status import read_status, recorded_trial
from recsys.sweeps.summary import SweepSummary
from tests.conftest import CONF, TINY
from tests.test_sweeps import job_metrics, run_cli

METRIC = "best/val/ndcg@10"
# One quiet CPU epoch on a user's log file (TINY's keys are the synthetic source's).
LOG_EPOCH = [*(o for o in TINY if not o.startswith("data.")), "trainer.max_epochs=1"]


def write_log(path: Path, users: int = 30) -> Path:
    path.write_text(
        "user,item\n"
        + "".join(f"u{u},i{(u * 7 + k) % 13}\n" for u in range(users) for k in range(6))
    )
    return path


def sweep_config(sweep_dir: Path, *overrides: str):
    """The multirun config the sweep summary callback is handed (with its `hydra:` node)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.sweep.dir = str(sweep_dir)
    return cfg


def fake_job(
    sweep_dir: Path, job: int, dim: int, status: dict, metric: float | None, *overrides: str
) -> None:
    """A job directory as a trial leaves it: composed config, overrides, status, maybe metrics."""
    job_dir = sweep_dir / str(job)
    (job_dir / ".hydra").mkdir(parents=True)
    cfg = sweep_config(sweep_dir, f"model.dim={dim}", *overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.save(cfg, job_dir / ".hydra" / "config.yaml")
    (job_dir / ".hydra" / "overrides.yaml").write_text(f"- model.dim={dim}\n")
    (job_dir / "status.json").write_text(json.dumps(status))
    if metric is not None:
        (job_dir / "metrics.json").write_text(json.dumps({METRIC: metric, "epochs": 1}))


def test_a_failing_trial_is_recorded_and_tells_the_sweeper_nothing(tmp_path):
    """A user error, a bug, and a NaN objective each end as `failed` with the error; None returned."""

    def bad_data() -> float:
        raise DataError(f"{tmp_path / 'log.csv'}: file not found")

    def bug() -> float:
        raise ZeroDivisionError("division by zero")

    for name, fn, error in [
        ("data", bad_data, f"DataError: {tmp_path / 'log.csv'}: file not found"),
        ("bug", bug, "ZeroDivisionError: division by zero"),
        ("nan", lambda: float("nan"), "ValueError: the objective is nan"),
    ]:
        assert recorded_trial(tmp_path / name, fn) is None
        status = read_status(tmp_path / name)
        assert status["status"] == "failed" and status["error"].startswith(error), status
    assert recorded_trial(tmp_path / "good", lambda: 0.25) == 0.25
    assert read_status(tmp_path / "good") == {"status": "done", "objective": 0.25}


def test_summary_keeps_failed_jobs_and_takes_the_best_config_from_finished_ones(tmp_path, capsys):
    """Job 1 failed after writing a better metric: it is listed as failed, job 2 is the best, and
    the end of the sweep exits 1 naming the failed job."""
    fake_job(tmp_path, 0, 8, {"status": "done"}, 0.2)
    fake_job(tmp_path, 1, 16, {"status": "failed", "error": "KeyError: 'best/val/x'"}, 0.9)
    fake_job(tmp_path, 2, 32, {"status": "done"}, 0.5)
    fake_job(
        tmp_path, 3, 64, {"status": "failed", "error": "DataError: a.csv: file not found"}, None
    )
    with pytest.raises(SystemExit) as ended:
        SweepSummary(METRIC).on_multirun_end(sweep_config(tmp_path))
    assert ended.value.code == 1
    summary = pd.read_csv(tmp_path / "summary.csv", keep_default_na=False)
    by_job = summary.set_index("job")
    assert by_job.loc[3, "status"] == "failed"
    assert by_job.loc[3, "error"] == "DataError: a.csv: file not found"
    assert by_job.loc[2, "status"] == by_job.loc[0, "status"] == "done"
    assert yaml.safe_load((tmp_path / "best_config.yaml").read_text())["model"]["dim"] == 32
    markdown = (tmp_path / "summary.md").read_text()
    assert (
        "2 of 4 runs done, 2 failed" in markdown and "DataError: a.csv: file not found" in markdown
    )
    err = capsys.readouterr().err
    assert "error: job 3 failed: DataError: a.csv: file not found" in err
    assert "error: 2 of 4 trials failed" in err


def test_every_trial_failing_leaves_no_best_config(tmp_path):
    fake_job(tmp_path, 0, 8, {"status": "failed", "error": "RuntimeError: boom"}, None)
    with pytest.raises(SystemExit):
        SweepSummary(METRIC).on_multirun_end(sweep_config(tmp_path))
    assert not (tmp_path / "best_config.yaml").exists()
    assert pd.read_csv(tmp_path / "summary.csv")["status"].tolist() == ["failed"]


def test_best_config_reruns_into_the_task_outputs_folder(tmp_path):
    """The documented re-run (`--config-path <sweep> --config-name best_config`) composes a run
    directory under outputs/<task_name>/, as a plain run of scripts/train.py does."""
    fake_job(tmp_path, 0, 8, {"status": "done"}, 0.2, "task_name=tuned")
    SweepSummary(METRIC).on_multirun_end(sweep_config(tmp_path))
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        rerun = compose("best_config", return_hydra_config=True)
    run_dir = OmegaConf.to_container(rerun.hydra.run, resolve=True)["dir"]
    assert run_dir.startswith("outputs/tuned/"), run_dir
    assert rerun.hydra.job.chdir is False and rerun.model.dim == 8


@pytest.mark.slow
def test_grid_sweep_with_a_bad_data_path_runs_the_others(tmp_path):
    """Job 1's file is missing: jobs 0 and 2 train, the summary says why 1 failed, exit code 1."""
    good, other = write_log(tmp_path / "log.csv"), write_log(tmp_path / "other.csv", 25)
    missing, sweep = tmp_path / "missing.csv", tmp_path / "sweep"
    proc = run_cli(["-m", "data=interactions", *LOG_EPOCH, f"data.path={good},{missing},{other}",
                    f"hydra.sweep.dir={sweep}"], tmp_path, returncode=1)  # fmt: skip
    assert sorted(job_metrics(sweep)) == ["0", "2"]
    summary = pd.read_csv(sweep / "summary.csv", keep_default_na=False).set_index("job")
    assert sorted(summary["status"].items()) == [(0, "done"), (1, "failed"), (2, "done")]
    assert summary.loc[1, "error"] == f"DataError: {missing}: file not found"
    assert read_status(sweep / "1")["error"] == f"DataError: {missing}: file not found"
    best = yaml.safe_load((sweep / "best_config.yaml").read_text())
    assert best["data"]["path"] in (str(good), str(other))
    assert f"error: job 1 failed: DataError: {missing}: file not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    # scripts/train.py chose the thread count and said so (run_cli sets OMP_NUM_THREADS=1).
    assert (
        "intra-op threads: 1 (auto: OMP_NUM_THREADS=1)" in (sweep / "0" / "train.log").read_text()
    )


@pytest.mark.slow
def test_optuna_study_goes_on_past_a_failed_trial(tmp_path):
    """Trials drawing the missing file fail as Optuna FAIL trials; the study finishes its trials."""
    good, missing, sweep = write_log(tmp_path / "log.csv"), tmp_path / "missing.csv", tmp_path / "s"
    proc = run_cli(["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=random",
                    "hydra.sweeper.sampler.seed=1", "hydra.sweeper.direction=maximize",
                    "hydra.sweeper.n_trials=3", f"data.path=choice({missing},{good})",
                    "data=interactions", *LOG_EPOCH, f"hydra.sweep.dir={sweep}"],
                   tmp_path, returncode=1)  # fmt: skip
    statuses = {job: read_status(sweep / job)["status"] for job in "012"}
    assert sorted(statuses.values()) == ["done", "done", "failed"], statuses
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_params"]["data.path"] == str(good)
    assert (sweep / "best_config.yaml").is_file()
    assert "error: 1 of 3 trials failed" in proc.stderr

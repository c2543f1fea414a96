"""Sweep area: trials that fail inside a sweep. Each case runs the jobs in-process as a multirun
runs them (`recorded_trial` around train + objective, in a job directory laid out as Hydra lays it),
then the sweep summary's end-of-sweep step; the checks read status.json, summary.csv and
best_config.yaml as a user would. The Optuna case drives hydra-optuna-sweeper's own loop."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from tests.bad_inputs.harness import Case
from tests.conftest import CONF, TINY, compose_config

METRIC = "best/val/ndcg@10"
# The smallest run of a user's log file: one CPU epoch, no progress bar.
BASE = ["data=interactions", *(o for o in TINY if not o.startswith("data.")),
        "trainer.max_epochs=1", "~logger"]  # fmt: skip


def write_log(path: Path) -> Path:
    path.write_text(
        "user,item\n" + "".join(f"u{u},i{(u * 7 + k) % 13}\n" for u in range(30) for k in range(6))
    )
    return path


def run_job(job_dir: Path, overrides: list[str]) -> float | None:
    """One job as scripts/train.py runs it in a multirun (recsys.sweeps.trial.run_trial)."""
    from recsys.sweeps.status import recorded_trial
    from recsys.train import objective, train

    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))

    def trial() -> float:
        cfg = compose_config([*BASE, *overrides], job_dir)
        OmegaConf.save(cfg, job_dir / ".hydra" / "config.yaml")
        return objective(train(cfg)[0], cfg)

    return recorded_trial(job_dir, trial)


def end_sweep(sweep: Path) -> dict:
    """The summary callback's end of the multirun; returns the exit code it asks for and the files."""
    from recsys.sweeps.summary import SweepSummary

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=BASE, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.sweep.dir = str(sweep)
    try:
        SweepSummary(METRIC).on_multirun_end(cfg)
        code = 0
    except SystemExit as ended:  # a failed trial: the sweep's exit code
        code = ended.code
    summary = pd.read_csv(sweep / "summary.csv", keep_default_na=False, dtype={"job": str})
    best = sweep / "best_config.yaml"
    return {
        "exit": code,
        "status": dict(zip(summary["job"], summary["status"], strict=True)),
        "error": dict(zip(summary["job"], summary["error"], strict=True)),
        "best": yaml.safe_load(best.read_text()) if best.exists() else None,
    }


def sweep_of(tmp: Path, trials: list[list[str]]) -> dict:
    for job, overrides in enumerate(trials):
        run_job(tmp / "sweep" / str(job), overrides)
    return end_sweep(tmp / "sweep")


def bad_path_among_good(tmp: Path) -> dict:
    good, missing = write_log(tmp / "log.csv"), tmp / "missing.csv"
    return sweep_of(tmp, [[f"data.path={missing}"], [f"data.path={good}"]])


def check_bad_path(result: dict, tmp: Path) -> None:
    assert result["exit"] == 1, result
    assert result["status"] == {"0": "failed", "1": "done"}, result
    assert result["error"]["0"] == f"DataError: {tmp / 'missing.csv'}: file not found", result
    assert result["best"]["data"]["path"] == str(tmp / "log.csv")  # the finished trial
    assert json.loads((tmp / "sweep" / "0" / "status.json").read_text())["status"] == "failed"


def check_all_failed(result: dict, tmp: Path) -> None:
    assert result["exit"] == 1 and result["best"] is None, result
    assert set(result["status"].values()) == {"failed"}, result
    assert all("file not found" in e for e in result["error"].values()), result


def check_missing_objective(result: dict, tmp: Path) -> None:
    assert result["exit"] == 1 and result["best"] is None, result
    assert result["status"] == {"0": "failed"}, result
    assert result["error"]["0"].startswith("ConfigError: optimized_metric='best/val/nope'"), result
    assert (tmp / "sweep" / "0" / "metrics.json").is_file()  # it trained; only the objective failed


def optuna_past_a_failure(tmp: Path) -> dict:
    """hydra-optuna-sweeper's loop with a launcher that runs each trial as run_job does."""
    from hydra.core.utils import JobReturn, JobStatus
    from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
    from optuna.samplers import RandomSampler

    from recsys.errors import DataError
    from recsys.sweeps.status import recorded_trial

    def fake_trial(path: str) -> float:
        if path == "missing.csv":
            raise DataError(f"{tmp / path}: file not found")
        return 0.5

    class InProcessLauncher:
        def launch(self, job_overrides, initial_job_idx):
            returns = []
            for i, overrides in enumerate(job_overrides):
                path = overrides[0].partition("=")[2]
                job = tmp / "sweep" / str(initial_job_idx + i)
                value = recorded_trial(job, lambda p=path: fake_trial(p))
                returns.append(JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED,
                                         _return_value=value))  # fmt: skip
            return returns

    sweeper = OptunaSweeperImpl(
        sampler=RandomSampler(seed=1), direction="maximize", storage=None, study_name="corpus",
        n_trials=4, n_jobs=1, max_failure_rate=0.0, search_space=None, custom_search_space=None,
        params=OmegaConf.create({"data.path": "choice(missing.csv,log.csv)"}),
    )  # fmt: skip
    sweeper.launcher, sweeper.hydra_context = InProcessLauncher(), object()  # what setup() sets
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp / "sweep")}}})
    sweeper.sweep([])
    statuses = {p.name: json.loads((p / "status.json").read_text()) for p in (tmp / "sweep").iterdir()
                if p.is_dir()}  # fmt: skip
    results = yaml.safe_load((tmp / "sweep" / "optimization_results.yaml").read_text())
    return {"statuses": statuses, "results": results}


def check_optuna(result: dict, tmp: Path) -> None:
    statuses = result["statuses"]
    assert len(statuses) == 4, statuses  # the study went on after the failure
    kinds = sorted(s["status"] for s in statuses.values())
    assert "failed" in kinds and "done" in kinds, statuses
    assert result["results"]["best_params"] == {"data.path": "log.csv"}, result
    assert result["results"]["best_value"] == 0.5


def cases() -> list[Case]:
    return [
        Case("trial_with_bad_data_path_among_good", "sweep", bad_path_among_good,
             expect="ok", check=check_bad_path),
        Case("all_trials_failing", "sweep", expect="ok", check=check_all_failed,
             run=lambda tmp: sweep_of(tmp, [[f"data.path={tmp / 'a.csv'}"],
                                             [f"data.path={tmp / 'b.csv'}"]])),
        Case("trial_without_its_objective", "sweep", expect="ok", check=check_missing_objective,
             run=lambda tmp: sweep_of(tmp, [[f"data.path={write_log(tmp / 'log.csv')}",
                                             "optimized_metric=best/val/nope"]])),
        Case("optuna_trial_failing_keeps_the_study", "sweep", optuna_past_a_failure,
             expect="ok", check=check_optuna),
    ]  # fmt: skip

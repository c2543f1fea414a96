"""Sweeps through the real entry point: grid multirun summary, Optuna, parallel trials, Submitit."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from recsys.sweeps.summary import write_summary
from recsys.sweeps.trial import claim_slot
from tests.conftest import CONF, ROOT, TINY

ONE_EPOCH = [*TINY, "trainer.max_epochs=1"]


def run_cli(
    args: list[str], cwd: Path, timeout: int = 600, returncode: int = 0
) -> subprocess.CompletedProcess:
    """scripts/train.py in a fresh process, run from `cwd` so nothing lands in the repository.

    The result also carries `pid`, the process that ran Hydra (and its basic launcher).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), *args]
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as popen:
        stdout, stderr = popen.communicate(timeout=timeout)
    proc = subprocess.CompletedProcess(cmd, popen.returncode, stdout, stderr)
    proc.pid = popen.pid
    assert proc.returncode == returncode, stdout[-3000:] + stderr[-3000:]
    return proc


def job_metrics(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}


@pytest.mark.slow
def test_grid_multirun_writes_sorted_summary(tmp_path):
    """Must-show 1: 3 x 2 grid, one row per run, best run first, best config saved and printed."""
    sweep = tmp_path / "sweep"
    proc = run_cli(
        [
            "-m",
            *ONE_EPOCH,
            "model.dim=8,16,32",
            "model.loss=bpr,softmax",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    metrics = job_metrics(sweep)
    assert sorted(metrics) == [str(i) for i in range(6)]
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 6 and (summary["status"] == "done").all()
    objective = "best/val/ndcg@10"
    best_job = max(metrics, key=lambda j: metrics[j][objective])
    assert str(summary["job"].iloc[0]) == best_job
    assert summary[objective].is_monotonic_decreasing
    saved = [metrics[str(job)] for job in summary["job"]]
    assert summary[objective].tolist() == pytest.approx([m[objective] for m in saved])
    assert summary["test/ndcg@10"].tolist() == pytest.approx([m["test/ndcg@10"] for m in saved])
    assert summary["epochs"].tolist() == [m["epochs"] for m in saved]
    assert list(summary.columns[:4]) == ["job", "model.dim", "model.loss", objective]
    assert {(r["model.dim"], r["model.loss"]) for _, r in summary.iterrows()} == {
        (d, loss) for d in (8, 16, 32) for loss in ("bpr", "softmax")
    }
    rows = [line for line in (sweep / "summary.md").read_text().splitlines() if line[:2] == "| "]
    assert len(rows) == 8 and rows[2].startswith(f"| {best_job} |")  # header, rule, 6 runs
    best_cfg = yaml.safe_load((sweep / "best_config.yaml").read_text())
    best_overrides = yaml.safe_load((sweep / best_job / ".hydra" / "overrides.yaml").read_text())
    assert f"model.dim={best_cfg['model']['dim']}" in best_overrides
    assert f"Best run: job {best_job}" in proc.stdout


@pytest.mark.slow
def test_optuna_search_runs_eight_trials(tmp_path):
    """Must-show 2: the shipped ml100k search on synthetic data; best trial printed and saved."""
    sweep = tmp_path / "search"
    proc = run_cli(
        ["hparams_search=ml100k_optuna", "data=synthetic", *ONE_EPOCH,
         "hydra.sweeper.n_trials=8", "hydra.sweeper.sampler.n_startup_trials=4",
         f"hydra.sweep.dir={sweep}"],
        tmp_path,
    )  # fmt: skip
    metrics = job_metrics(sweep)
    assert len(metrics) == 8
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best_value = max(m["best/val/ndcg@10"] for m in metrics.values())
    assert results["best_value"] == pytest.approx(best_value)
    assert set(results["best_params"]) == {
        "model.dim", "model.loss", "model.module.optimizer.lr", "model.module.embedding_l2",
        "data.loader.num_negatives",
    }  # fmt: skip
    summary = pd.read_csv(sweep / "summary.csv")
    best_job = str(summary["job"].iloc[0])
    assert metrics[best_job]["best/val/ndcg@10"] == pytest.approx(best_value)
    best_cfg = yaml.safe_load((sweep / "best_config.yaml").read_text())
    assert best_cfg["model"]["dim"] == results["best_params"]["model.dim"]
    assert best_cfg["model"]["module"]["optimizer"]["lr"] == pytest.approx(
        results["best_params"]["model.module.optimizer.lr"]
    )
    assert "Best run: job" in proc.stdout and "Config (saved to" in proc.stdout


def _job_pid(log: Path) -> int:
    return int(re.search(r"pid (\d+) on ", log.read_text()).group(1))


@pytest.mark.slow
def test_parallel_launcher_runs_two_trials_at_once(tmp_path):
    """Must-show 3: hydra/launcher=parallel on CPU, 2 trials in 2 processes, separate run dirs."""
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "hydra/launcher=parallel", *ONE_EPOCH, "model.dim=8,16",
                    f"hydra.sweep.dir={sweep}"], tmp_path)  # fmt: skip
    assert "Joblib.Parallel(n_jobs=2," in proc.stdout + proc.stderr  # no GPU here: the CPU default
    # Two worker processes took one trial each (a trial lasts about a second here, less than the
    # spread of the workers' start-up, so overlap in time is not what this asserts).
    pid0, pid1 = (_job_pid(sweep / job / "train.log") for job in "01")
    assert pid0 != pid1 and proc.pid not in (pid0, pid1)
    for job, dim in (("0", 8), ("1", 16)):
        resolved = yaml.safe_load((sweep / job / ".hydra" / "resolved.yaml").read_text())
        assert resolved["paths"]["output_dir"] == str(sweep / job)
        assert resolved["model"]["dim"] == dim
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
    assert len(pd.read_csv(sweep / "summary.csv")) == 2


@pytest.mark.slow
def test_submitit_local_runs_two_trials(tmp_path):
    """Must-show 5: the Submitit launcher (local executor) runs the same path as SLURM would."""
    sweep = tmp_path / "sweep"
    run_cli(["-m", "hydra/launcher=submitit_local", *ONE_EPOCH, "model.dim=8,16",
             f"hydra.sweep.dir={sweep}"], tmp_path)  # fmt: skip
    assert sorted(job_metrics(sweep)) == ["0", "1"]
    assert list((sweep / ".submitit").iterdir())  # submitit's own job folders
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 2 and (summary["status"] == "done").all()


@pytest.mark.parametrize("launcher", ["submitit_slurm", "slurm"])
def test_slurm_launchers_compose(tmp_path, launcher):
    """Must-show 5: the SLURM launcher configs compose; ours sizes the job from trainer=ddp."""
    proc = run_cli([f"hydra/launcher={launcher}", "trainer=ddp", "trainer.devices=8",
                    "trainer.num_nodes=2", "--cfg", "all", "--resolve"], tmp_path)  # fmt: skip
    cfg = yaml.safe_load(proc.stdout)
    launcher_cfg = cfg["hydra"]["launcher"]
    assert launcher_cfg["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert cfg["trainer"]["strategy"]["_target_"].endswith("DDPStrategy")
    if launcher == "slurm":
        assert (launcher_cfg["nodes"], launcher_cfg["tasks_per_node"]) == (2, 8)
        assert launcher_cfg["gpus_per_node"] == 8


def test_device_slots_are_exclusive_and_prefer_job_modulo(tmp_path):
    """Trials running at once never share a GPU, even when jobs finish out of order."""
    with claim_slot(tmp_path, 4, job_num=6) as slot:
        assert slot == 2  # 6 mod 4
        with claim_slot(tmp_path, 4, job_num=2) as other:  # job 2 also prefers 2: it is taken
            assert other == 3
    released, holding = threading.Event(), threading.Event()

    def hold() -> None:
        with claim_slot(tmp_path, 1, job_num=0):
            holding.set()
            released.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)  # the slot is held before the second trial asks (no start-up race)
    try:
        waiter_got = []

        def wait_for_slot() -> None:
            with claim_slot(tmp_path, 1, job_num=1, poll_s=0.05) as slot:
                waiter_got.append(slot)

        waiter = threading.Thread(target=wait_for_slot)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive()  # one slot, held: the second trial waits
        released.set()
        waiter.join(5)
        assert waiter_got == [0]
    finally:
        released.set()
        holder.join()


def test_summary_sorts_by_metric_and_keeps_unfinished_runs(tmp_path):
    """Failed or running jobs stay in the table, last; mode=min sorts ascending."""
    for job, (value, done) in enumerate([(0.2, True), (None, False), (0.5, True), (0.1, True)]):
        job_dir = tmp_path / str(job)
        (job_dir / ".hydra").mkdir(parents=True)
        (job_dir / ".hydra" / "overrides.yaml").write_text(
            f"- model.dim={8 * (job + 1)}\n- seed=1\n"
        )
        (job_dir / ".hydra" / "config.yaml").write_text(f"model:\n  dim: {8 * (job + 1)}\n")
        if done:
            metrics = {"best/val/ndcg@10": value, "test/ndcg@10": value, "epochs": 3}
            (job_dir / "metrics.json").write_text(json.dumps({**metrics, "wall_time_s": 1.0}))
    frame = write_summary(tmp_path, "best/val/ndcg@10", "max")
    assert frame["job"].tolist() == ["2", "0", "3", "1"]
    assert frame["status"].tolist()[-1] == "running or failed"
    assert math.isnan(frame["best/val/ndcg@10"].iloc[-1])
    assert "seed" not in frame.columns  # same in every job: only in the overrides column
    assert write_summary(tmp_path, "best/val/ndcg@10", "min")["job"].tolist() == [
        "3",
        "0",
        "2",
        "1",
    ]
    assert "3 of 4 runs done" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize("search", ["ml100k_optuna", "two_tower_optuna"])
def test_search_spaces_name_existing_keys(search):
    """A misspelt key in a search space would only fail trials at run time; catch it here."""
    if search == "two_tower_optuna" and not (CONF / "model" / "two_tower.yaml").is_file():
        pytest.skip("conf/model/two_tower.yaml is not on this branch")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"hparams_search={search}"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert cfg.hydra.sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    missing = object()
    for key in cfg.hydra.sweeper.params:
        assert OmegaConf.select(cfg, key, default=missing) is not missing, key

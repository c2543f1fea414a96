"""One job of a sweep, as `scripts/train.py` runs it.

Three things Hydra's launchers and Lightning do not settle between them:
- trials running side by side on a multi-GPU box each get a GPU of their own;
- under DDP, Lightning starts ranks 1..N-1 by re-running the script with `sys.argv`, which in a
  multirun (`-m`, value lists) would start the whole sweep again in every child: here each child runs
  this job's saved config as a single run in this job's directory instead;
- the environment Lightning sets for its children (`LOCAL_RANK`, `MASTER_PORT`, ...) is cleared
  after the job, so the next DDP job of the same sweep launches its own processes on a fresh port.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_original_cwd
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.strategies.launchers import subprocess_script

from recsys.cli import run_or_explain
from recsys.config.trusted import check_rerun
from recsys.errors import ConfigError
from recsys.sweeps.resolvers import parallel_trials
from recsys.sweeps.status import recorded_trial
from recsys.train import objective, train

log = logging.getLogger(__name__)

# Set by Lightning's DDP launcher in the parent process; left behind they make the next job believe
# its processes were started externally.
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def run_trial(cfg: DictConfig, script: Path) -> float | None:
    """Train one job of a sweep (or a single run) and return the number sweepers optimise.

    A single run that fails ends the process (a user error as one line, exit code 2). In a multirun
    a failing trial is recorded in its job directory and the sweep goes on; it returns None then
    (`recsys.sweeps.status`), and the sweep summary ends the sweep with a non-zero exit code.
    """
    log.info("pid %d on %s", os.getpid(), socket.gethostname())
    run_or_explain(check_rerun, cfg)  # a sweep's best_config.yaml may come from elsewhere
    if _in_multirun():
        return recorded_trial(Path(cfg.paths.output_dir), lambda: _train(cfg, script))
    return run_or_explain(_train, cfg, script)


def _train(cfg: DictConfig, script: Path) -> float:
    with trial_device(cfg), ddp_children_as_single_runs(cfg, script):
        metrics, _ = train(cfg)
    if _in_multirun():  # a sweeper needs the number: a missing one fails the trial (recorded)
        return objective(metrics, cfg)
    try:  # a single run did what was asked; an optimized_metric it lacks is worth a warning only
        return objective(metrics, cfg)
    except ConfigError as err:
        log.warning("%s", err)
        return float("nan")


def trials_at_once() -> int:
    """Trials sharing this machine with this one (itself included): the joblib launcher's n_jobs."""
    if not _in_multirun():
        return 1
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")).lower():
        return 1  # the basic launcher runs one trial at a time
    try:
        n_jobs = int(launcher.n_jobs)
    except Exception:  # noqa: BLE001 - its resolver is not registered in this process
        n_jobs = parallel_trials()
    return n_jobs if n_jobs > 0 else (os.cpu_count() or 1)  # joblib: -1 = one per CPU


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _wants_one_gpu(trainer: DictConfig) -> bool:
    return (
        str(trainer.get("devices", 1)) == "1"
        and str(trainer.get("accelerator", "auto")) in ("auto", "gpu", "cuda")
        and trainer.get("strategy") in (None, "auto")
    )


@contextmanager
def trial_device(cfg: DictConfig) -> Iterator[None]:
    """In a multirun on a box with several GPUs, pin a one-device trial to a GPU of its own.

    The preferred GPU is the job number modulo the visible GPUs; a lock file per GPU makes sure two
    trials running at the same time never share one (jobs finish out of order, so the modulo alone
    does not). With more trials at once than GPUs, a trial waits for a GPU to free up.
    """
    num_gpus = torch.cuda.device_count()  # NVML: does not initialise CUDA in this process
    if not (_in_multirun() and num_gpus > 1 and _wants_one_gpu(cfg.trainer)):
        yield
        return
    hydra_cfg = HydraConfig.get()
    lock_dir = Path(hydra_cfg.sweep.dir) / ".device_locks" / socket.gethostname()
    with claim_slot(lock_dir, num_gpus, hydra_cfg.job.num) as slot:
        with open_dict(cfg):
            cfg.trainer.accelerator, cfg.trainer.devices = "gpu", [slot]
        log.info("job %d runs on cuda:%d", hydra_cfg.job.num, slot)
        yield


@contextmanager
def claim_slot(lock_dir: Path, num_slots: int, job_num: int, poll_s: float = 1.0) -> Iterator[int]:
    """Hold an exclusive lock on one of `num_slots` slots, trying `job_num % num_slots` first."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    order = [(job_num + i) % num_slots for i in range(num_slots)]
    waited = False
    while True:
        for slot in order:
            handle = (lock_dir / f"slot{slot}.lock").open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield slot
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if not waited:
            log.info("job %d: all %d devices busy, waiting for one", job_num, num_slots)
            waited = True
        time.sleep(poll_s)


def child_command(cfg: DictConfig, script: Path, local_rank: int) -> tuple[list[str], str]:
    """The command Lightning runs for DDP rank `local_rank`: this job's config as a single run."""
    out = Path(HydraConfig.get().runtime.output_dir)
    config = out / ".hydra" / "ddp_job.yaml"
    if not config.exists():  # written once by rank 0, before the first child starts
        config.parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(
            cfg, config
        )  # unresolved: ${hydra:runtime.output_dir} resolves to `out` there
    command = [
        sys.executable,
        str(script),
        f"--config-path={config.parent}",
        f"--config-name={config.stem}",
        f'hydra.run.dir="{out}"',
        "hydra.output_subdir=null",  # the parent's .hydra/ is the record of this run
        f"hydra.job.name=rank{local_rank}",  # each rank logs to <run>/rank<N>.log
    ]
    return command, get_original_cwd()


@contextmanager
def ddp_children_as_single_runs(cfg: DictConfig, script: Path) -> Iterator[None]:
    """Make Lightning's DDP launcher start this job's ranks, then leave no trace for the next job."""
    if "LOCAL_RANK" in os.environ or not HydraConfig.initialized():
        yield  # a DDP child, or processes started by torchrun / SLURM: nothing to launch
        return
    # Lightning's (private) hook for the child command; tests/test_ddp.py fails if it moves.
    # hasattr: a Lightning upgrade may drop the private hook; say so instead of failing obscurely.
    if not hasattr(subprocess_script, "_hydra_subprocess_cmd"):
        raise RuntimeError("Lightning moved _hydra_subprocess_cmd: update recsys/sweeps/trial.py")
    saved_env = {k: os.environ.get(k) for k in _LAUNCH_ENV}
    original = subprocess_script._hydra_subprocess_cmd
    subprocess_script._hydra_subprocess_cmd = lambda local_rank: child_command(
        cfg, script, local_rank
    )
    try:
        yield
        if os.environ.get("MASTER_PORT") != saved_env["MASTER_PORT"]:
            log.info(
                "DDP rendezvous was %s:%s", os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]
            )
    finally:
        subprocess_script._hydra_subprocess_cmd = original
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

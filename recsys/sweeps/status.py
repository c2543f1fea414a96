"""What became of each job of a sweep: `<job>/status.json`, written by the job, read by the summary.

A sweep is many runs; one bad trial (a missing file, a diverging learning rate, a bug hit by one
corner of the search space) must not throw away the others. The job records its own failure here,
so whichever launcher ran it (basic, joblib, submitit) the summary can tell `failed` from `done`
and show the error, and the sweep goes on with the next trial.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsys.atomic_files import write_json
from recsys.cli import USER_ERRORS

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
RUNNING, DONE, FAILED = "running", "done", "failed"


def write_status(job_dir: Path, status: str, **fields: Any) -> None:
    write_json(Path(job_dir) / STATUS_FILE, {"status": status, **fields})


def read_status(job_dir: Path) -> dict[str, Any] | None:
    """The recorded status, or None for a job that wrote none (older sweeps, or not started)."""
    try:
        return json.loads((Path(job_dir) / STATUS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def describe_error(err: BaseException) -> str:
    """One line: the error's type and message (a user error's message already names the culprit)."""
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


def recorded_trial(job_dir: Path, fn: Callable[[], float]) -> float | None:
    """Run one trial, recording `running`, then `done` or `failed` with the error, in `job_dir`.

    Any exception ends only this trial. The return value is what sweepers are told: the objective,
    or None for a failed trial. None, not NaN: the Optuna sweeper marks a trial whose value is not a
    float FAIL and goes on, while optuna 2.x rejects a NaN value and the sweeper's own fallback then
    raises, ending the study. An objective that is itself NaN is a failure too, for the same reason.
    """
    write_status(job_dir, RUNNING)
    try:
        value = fn()
        if value is None or math.isnan(float(value)):
            raise ValueError(f"the objective is {value}: nothing to compare this trial by")
    except Exception as err:  # noqa: BLE001 - one trial's failure, whatever it is, is recorded
        if isinstance(err, USER_ERRORS):
            log.error("trial failed: %s", describe_error(err))
        else:  # a bug in recsys: keep the traceback in the job's log
            log.exception("trial failed: %s", describe_error(err))
        write_status(
            job_dir, FAILED, error=describe_error(err), user_error=isinstance(err, USER_ERRORS)
        )
        return None
    write_status(job_dir, DONE, objective=float(value))
    return float(value)

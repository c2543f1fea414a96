"""Sweep summary: one row per job of a multirun, sorted by the optimised metric, at the sweep root.

`summary.csv` (every test metric, epoch time and throughput) and `summary.md` (the ones people compare) are rewritten as each job
ends, so a long sweep shows its progress, and once more when the sweep ends; then the best job's
config is printed and saved as `best_config.yaml`. Rows are read back from the job directories
(`.hydra/overrides.yaml`, `metrics.json`), so this works whichever launcher ran the jobs, in whatever
process: basic, joblib (parallel), submitit (local or SLURM).

A failed job (`recsys.sweeps.status`) keeps its row, with its error; the best config comes from
the jobs that finished, and a sweep with failed jobs ends with exit code 1 once the summary is
written, so scripts and CI see that not everything ran.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from recsys.atomic_files import write_atomic
from recsys.config.trusted import load_trusted
from recsys.sweeps.status import DONE, FAILED, read_status

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    def __init__(self, metric: str, mode: str = "max"):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.metric, self.mode = metric, mode

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            write_summary(Path(config.hydra.sweep.dir), self.metric, self.mode)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        frame = write_summary(sweep_dir, self.metric, self.mode)
        best = save_best_config(sweep_dir, frame, self.metric, rerun_settings(config))
        if best is not None:
            print(best, flush=True)
        failures = failure_lines(frame, sweep_dir)
        if failures:
            print("\n".join(failures), file=sys.stderr, flush=True)
            sys.exit(1)  # SystemExit passes Hydra's callback guard: the sweep's exit code says it


def _job_sort_key(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (1 << 30, path.name)


def _override_value(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def collect_runs(sweep_dir: Path, metric: str) -> pd.DataFrame:
    """One row per job directory: swept keys, the optimised metric, test metrics, epochs, wall time."""
    rows = []
    job_dirs = [p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()]
    for job_dir in sorted(job_dirs, key=_job_sort_key):
        overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
        try:
            metrics = json.loads((job_dir / "metrics.json").read_text())
        except (OSError, json.JSONDecodeError):  # still running, failed, or being written
            metrics = {}
        row: dict[str, Any] = {"job": job_dir.name}
        row.update(_override_value(o) for o in overrides)
        row[metric] = metrics.get(metric, math.nan)
        row.update({k: v for k, v in metrics.items() if k.startswith(("test/", "best/", "time/"))})
        row["epochs"] = metrics.get("epochs", math.nan)
        row["wall_time_s"] = metrics.get("wall_time_s", math.nan)
        status = read_status(job_dir) or {}
        row["status"] = status.get("status") or ("done" if metrics else "running or failed")
        row["error"] = status.get("error", "")
        row["overrides"] = " ".join(overrides)
        row["run_dir"] = str(job_dir)
        rows.append(row)
    return pd.DataFrame(rows)


def swept_keys(frame: pd.DataFrame) -> list[str]:
    """Override keys whose values differ between jobs (the ones worth a column of their own)."""
    all_keys = {
        _override_value(o)[0] for line in frame.get("overrides", []) for o in line.split() if o
    }
    return [k for k in sorted(all_keys) if k in frame and frame[k].astype(str).nunique() > 1]


def _markdown(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    def cell(column: str, value: Any) -> str:
        if isinstance(value, str) and "." in value:  # a float override, as Optuna proposes them
            try:
                return format(float(value), ".4g")
            except ValueError:
                return value
        if isinstance(value, float):
            return "" if math.isnan(value) else format(value, formats.get(column, ".4f"))
        return str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append(
            "| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + " |"
        )
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    """Jobs running in parallel rewrite the summary; readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_summary(sweep_dir: Path, metric: str, mode: str = "max") -> pd.DataFrame:
    """Write summary.csv and summary.md, best run first; returns the sorted table."""
    frame = collect_runs(sweep_dir, metric)
    if frame.empty:
        return frame
    # Rows arrive in job order; a stable sort keeps that order among ties and unfinished runs.
    frame = frame.sort_values(
        metric, ascending=mode == "min", na_position="last", kind="stable"
    ).reset_index(drop=True)
    keys = swept_keys(frame)
    front = ["job", *keys, metric]
    scores = sorted(c for c in frame if c.startswith(("test/", "best/")) and c != metric)
    timing = sorted(c for c in frame if c.startswith("time/"))
    frame = frame[
        [
            *front,
            *scores,
            "epochs",
            *timing,
            "wall_time_s",
            "status",
            "error",
            "overrides",
            "run_dir",
        ]
    ]
    _write_atomic(sweep_dir / "summary.csv", frame.to_csv(index=False))

    shown = [c for c in scores if c.startswith(("test/ndcg@", "test/recall@"))]
    table = frame[[*front, *shown, "epochs", *timing, "wall_time_s", "status"]]
    done, failed = (int((frame["status"] == s).sum()) for s in (DONE, FAILED))
    failed_note = f", {failed} failed" if failed else ""
    header = (
        f"# Sweep summary: {done} of {len(frame)} runs done{failed_note}, "
        f"sorted by {metric} ({mode})\n\n"
    )
    if failed:
        table = table.assign(error=frame["error"])
    if not keys:
        table = table.assign(overrides=frame["overrides"])
    formats = {"epochs": ".0f", "wall_time_s": ".1f", "time/train_epoch_s": ".3f"}
    formats["time/train_rows_per_s"] = ".0f"
    _write_atomic(sweep_dir / "summary.md", header + _markdown(table, formats))
    return frame


def rerun_settings(config: DictConfig) -> dict[str, Any]:
    """The sweep's own Hydra run settings, so that re-running best_config.yaml lands where a plain
    run of scripts/train.py would (`outputs/<task>/<date>_<time>`), not in Hydra's default folder:
    a config file given by --config-path carries no `hydra:` group of conf/ with it."""
    hydra_cfg = OmegaConf.to_container(config.hydra, resolve=False)
    return {"run": {"dir": hydra_cfg["run"]["dir"]}, "job": {"chdir": hydra_cfg["job"]["chdir"]}}


def save_best_config(
    sweep_dir: Path, frame: pd.DataFrame, metric: str, hydra: dict[str, Any] | None = None
) -> str | None:
    """Save the best finished job's composed config as best_config.yaml; returns a printable report.

    `hydra` (the sweep's run settings) is appended as the file's `hydra:` node.
    """
    finished = (
        frame[(frame["status"] == DONE) & frame[metric].notna()] if not frame.empty else frame
    )
    if finished.empty:
        log.warning("sweep %s: no finished run has %s", sweep_dir, metric)
        return None
    best = finished.iloc[0]
    source = Path(best["run_dir"]) / ".hydra" / "config.yaml"
    target = sweep_dir / "best_config.yaml"
    load_trusted(source)  # a job folder may come from elsewhere: no payload gets republished
    text = source.read_text()
    if hydra:
        text += (
            "# Hydra settings of the sweep: a re-run lands where a run of scripts/train.py does\n"
            + OmegaConf.to_yaml({"hydra": hydra})
        )
    write_atomic(target, text.encode())
    return (
        f"Best run: job {best['job']} with {metric}={best[metric]:.4f} ({best['run_dir']})\n"
        f"Overrides: {best['overrides']}\n"
        f"Config (saved to {target}):\n{text}"
    )


def failure_lines(frame: pd.DataFrame, sweep_dir: Path) -> list[str]:
    """One `error:` line per failed job and a last one counting them; empty when none failed."""
    if frame.empty:
        return []
    failed = frame[frame["status"] == FAILED]
    if failed.empty:
        return []
    lines = [f"error: job {row.job} failed: {row.error}" for row in failed.itertuples()]
    lines.append(
        f"error: {len(failed)} of {len(frame)} trials failed; the others ran: "
        f"{sweep_dir / 'summary.md'}"
    )
    return lines

"""What a run adds to its MLflow run once `metrics.json` is written, and what an export adds later.

Lightning sends the per-epoch metrics through the logger as they come; the rest is known only at
the end: the resolved config as params, the metrics that were never logged per step (epochs, wall
time, timings), and the run's files. `log_run` is called by training with whatever loggers the run
has, and acts only where an MLflow logger is among them; it records the MLflow run in
`mlflow_run.json` so that `scripts/export.py` can add the export to the same run (`log_export`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recsys.run_dir import RunDir
from recsys.tracking.mlflow_logger import ARTIFACT_DIR, STORE_FILE, metric_name

log = logging.getLogger(__name__)

RECORD = "mlflow_run.json"  # tracking URI, experiment and run id of the run's MLflow run
# The run's own small outputs (reports, plots, tables); checkpoints, vocabularies, the training
# state and the store itself stay in the run directory.
FILE_SUFFIXES = (".json", ".png", ".csv", ".log", ".html")
SKIPPED = {RECORD, STORE_FILE, ARTIFACT_DIR}
_PARAM_KEY = re.compile(r"[^a-zA-Z0-9_/. :-]+")
MAX_PARAM_KEY = 250  # MLflow's limit on a param name
BATCH = 100  # MLflow's limit on params per log_batch call


def param_value_limit() -> int:
    """MLflow's longest param value: 6000 characters in current releases, 500 in older ones."""
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:
        return 500
    return int(MAX_PARAM_VAL_LENGTH)


def flatten_params(cfg: DictConfig | dict, limit: int) -> dict[str, str]:
    """The resolved config as `model.dim -> "64"`; lists as JSON; values over `limit` characters
    cut with a `...` end (the full config is the `.hydra/resolved.yaml` artifact)."""
    tree = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    flat: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, sub in node.items():
                walk(sub, f"{prefix}.{key}" if prefix else str(key))
            return
        text = node if isinstance(node, str) else json.dumps(node, default=str)
        key = _PARAM_KEY.sub("_", prefix)[:MAX_PARAM_KEY]
        flat[key] = text if len(text) <= limit else text[: limit - 3] + "..."

    walk(tree, "")
    return flat


def mlflow_loggers(loggers: Iterable[Any]) -> list[Any]:
    from pytorch_lightning.loggers import MLFlowLogger

    return [lg for lg in loggers if isinstance(lg, MLFlowLogger)]


def run_files(run: RunDir) -> list[Path]:
    """Top-level report files of the run (metrics.json, data_report.json, plots, CSV tables)."""
    return sorted(
        p
        for p in run.root.iterdir()
        if p.is_file() and p.suffix in FILE_SUFFIXES and p.name not in SKIPPED
    )


def log_run(
    loggers: Iterable[Any], run: RunDir, cfg: DictConfig, metrics: dict[str, float]
) -> None:
    """Params, final metrics and files into each MLflow logger's run; nothing without one."""
    for logger in mlflow_loggers(loggers):
        client, run_id = logger.experiment, logger.run_id
        _log_params(client, run_id, flatten_params(cfg, param_value_limit()))
        _log_final_metrics(logger, metrics)
        for path in run_files(run):
            client.log_artifact(run_id, str(path))
        hydra_dir = run.config_path.parent
        if hydra_dir.is_dir():
            client.log_artifacts(run_id, str(hydra_dir), artifact_path="config")
        record = {
            "tracking_uri": client.tracking_uri,
            "experiment_id": logger.experiment_id,
            "run_id": run_id,
        }
        run.write_json(RECORD, record)
        log.info("mlflow: run %s in %s", run_id, record["tracking_uri"])


def _log_params(client: Any, run_id: str, params: dict[str, str]) -> None:
    """Config params, leaving out names the run holds already (Lightning logs the module's
    hyper-parameters at fit start; MLflow refuses to change a logged param)."""
    from mlflow.entities import Param

    held = client.get_run(run_id).data.params
    fresh = [Param(k, v) for k, v in params.items() if k not in held]
    for start in range(0, len(fresh), BATCH):
        client.log_batch(run_id, params=fresh[start : start + BATCH])


def _log_final_metrics(logger: Any, metrics: dict[str, float]) -> None:
    """metrics.json's values the run does not hold yet at that value (training logs the `stage/`
    ones itself; epochs, wall time and timings are logged here), so no value is logged twice."""
    latest = logger.experiment.get_run(logger.run_id).data.metrics
    missing = {k: v for k, v in metrics.items() if latest.get(metric_name(k)) != v}
    if missing:
        logger.log_metrics(missing)


def read_record(run_dir: Path) -> dict[str, str] | None:
    path = RunDir(run_dir).path(RECORD)
    return json.loads(path.read_text()) if path.is_file() else None


def log_export(run_dir: Path, out_dir: Path) -> str | None:
    """Log an export folder to the MLflow run its training run recorded; the run id, or None where
    the run was not tracked. A failure to log is a warning: the export itself is done and whole."""
    record = read_record(run_dir)
    if record is None:
        return None
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=record["tracking_uri"])
        client.log_artifacts(record["run_id"], str(out_dir), artifact_path="export")
    except Exception as err:  # noqa: BLE001 - no mlflow, server down, run deleted: same outcome
        first = " ".join(str(err).split())[:200]
        log.warning("export not logged to MLflow run %s: %s", record["run_id"], first)
        return None
    return record["run_id"]

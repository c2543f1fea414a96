"""Lightning's MLFlowLogger with the defaults a recsys run needs.

Two things Lightning's class cannot express in config alone:
- Where the store lives. With no tracking URI the run keeps its own SQLite store and artifacts in
  its directory (`<run_dir>/mlflow.db`, `<run_dir>/mlartifacts`): MLflow 3's own default backend
  is SQLite, and its file store (`./mlruns`) refuses to open unless `MLFLOW_ALLOW_FILE_STORE` is
  set. Lightning's default would write `./mlruns` (and MLflow's artifacts `./mlartifacts`) under
  whatever directory the user stood in. With a URI (a server) the server picks the artifact root:
  a local artifact path sent to a shared server would leave the files on this machine only.
- Metric names. recsys names metrics `val/ndcg@20`; MLflow refuses `@`, and Lightning drops it
  with a warning per name (`val/ndcg20`). Here `@k` becomes `_at_k` (`val/ndcg_at_20`), silently
  and the same way for per-epoch and final values (`metric_name`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import MLFlowLogger

STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_/. -]+")  # what Lightning's MLFlowLogger removes


def metric_name(key: str) -> str:
    """The MLflow name of a recsys metric: `test/ndcg@10` -> `test/ndcg_at_10`."""
    return _NOT_ALLOWED.sub("_", key.replace("@", "_at_"))


def local_store_uri(run_dir: str | Path) -> str:
    """The SQLite store a run keeps in its own directory when no tracking URI is given."""
    return f"sqlite:///{Path(run_dir).resolve() / STORE_FILE}"


class MlflowRunLogger(MLFlowLogger):
    """One MLflow run per recsys run; `recsys.tracking.mlflow_run` adds the config and files."""

    def __init__(
        self,
        run_dir: str,
        experiment_name: str = "recsys",
        tracking_uri: str | None = None,
        artifact_location: str | None = None,
        run_name: str | None = None,
        tags: dict[str, Any] | None = None,
        log_model: bool = False,
    ) -> None:
        root = Path(run_dir).resolve()
        if not tracking_uri and artifact_location is None:
            artifact_location = (root / ARTIFACT_DIR).as_uri()
        super().__init__(
            experiment_name=experiment_name,
            run_name=run_name or root.name,
            tracking_uri=tracking_uri or local_store_uri(root),
            tags={"recsys.run_dir": str(root), **(tags or {})},
            log_model=log_model,
            artifact_location=artifact_location,
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics({metric_name(k): v for k, v in metrics.items()}, step)

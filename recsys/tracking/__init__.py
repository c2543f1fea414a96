"""Experiment tracking beyond TensorBoard: MLflow (`logger=mlflow`, docs/tracking.md).

Kept import-light: the config check asks `missing_tracking_packages` before anything is built, so a
run that asks for MLflow without it installed ends with one line naming the extra, not with
Hydra's wrapped ModuleNotFoundError after the run directory was laid out.
"""

from __future__ import annotations

import importlib.util
from typing import Any

# Logger targets that need the `mlflow` module (recsys's own, and Lightning's plain one).
MLFLOW_TARGETS = (
    "recsys.tracking.mlflow_logger.MlflowRunLogger",
    "pytorch_lightning.loggers.MLFlowLogger",
)
EXTRA = "pip install 'recsys[tracking]'"


def mlflow_installed() -> bool:
    return importlib.util.find_spec("mlflow") is not None


def missing_tracking_packages(tree: dict[str, Any]) -> list[str]:
    """One problem per `logger.<name>` whose target needs MLflow where it is not installed."""
    loggers = tree.get("logger") if isinstance(tree.get("logger"), dict) else {}
    wanted = [
        name
        for name, entry in loggers.items()
        if isinstance(entry, dict) and entry.get("_target_") in MLFLOW_TARGETS
    ]
    if not wanted or mlflow_installed():
        return []
    return [f"logger.{name}: MLflow is not installed; {EXTRA} (or mlflow)" for name in wanted]

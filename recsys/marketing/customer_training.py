"""Train a customer model (`model=customer_churn | customer_purchase | customer_value`) over the
backtest folds of a timestamped log, and write the run directory.

Fold 0 (the latest cut-off) gives the run's `test/*` metrics, the weights that scoring and
`scripts/campaign.py` use, and the figures; every fold gives `backtest/<cut-off>/*` and a row of
backtest.csv. One fold is fitted by recsys/marketing/customer_fold.py.
"""

from __future__ import annotations

import io
import json
import logging
import time

import hydra
import pandas as pd
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from recsys.atomic_files import write_atomic
from recsys.data.customers.datamodule import CustomerDataModule
from recsys.errors import ConfigError
from recsys.marketing.customer_fold import FoldResult, fit_fold
from recsys.marketing.customer_scoring import MODEL_FILE, WEIGHTS_FILE
from recsys.models.customer import TARGETS
from recsys.reports.customer import write_binary_figures, write_value_deciles
from recsys.run_dir import RunDir
from recsys.tracking.mlflow_run import log_run

log = logging.getLogger(__name__)


def train_customers(run: RunDir, cfg: DictConfig, guard) -> tuple[dict[str, float], dict]:
    started = time.time()
    if cfg.get("ckpt_path"):
        raise ConfigError(
            "ckpt_path: customer models train in seconds and are not resumed; start a new run"
        )
    if cfg.model.target not in TARGETS:
        raise ConfigError(
            f"model.target={cfg.model.target!r}: must be one of {' | '.join(TARGETS)}"
        )
    pl.seed_everything(cfg.seed, workers=True)
    datamodule: CustomerDataModule = hydra.utils.instantiate(cfg.data)
    event_log = datamodule.load()
    if cfg.model.target == "value_next" and not event_log.has_value:
        log.warning("%s has no value column: value_next counts events", event_log.name)
    run.write_config(cfg)
    run.write_json("data_report.json", datamodule.report())
    guard.training_started()

    metrics: dict[str, float] = {}
    rows = []
    for i, fold in enumerate(datamodule.folds):
        day = fold.test.strftime("%Y-%m-%d")
        folder = None if i == 0 else str(run.checkpoints / "backtest" / day)
        result = fit_fold(cfg, datamodule, fold, folder, main=i == 0)
        metrics.update({f"backtest/{day}/{k}": v for k, v in result.metrics.items()})
        rows.append({"test_cutoff": day, **result.metrics})
        if i == 0:
            metrics.update(result.metrics)
            _write_model(run, cfg, result)
            main = result
    metrics["wall_time_s"] = time.time() - started
    for logger in main.loggers:
        logger.log_metrics({k: v for k, v in metrics.items() if "/" in k and "backtest" not in k})
    run.write_json("metrics.json", metrics)
    write_atomic(run.path("backtest.csv"), pd.DataFrame(rows).to_csv(index=False).encode())
    log_run(main.loggers, run, cfg, metrics)  # MLflow: config, final metrics, files
    shown = {k: round(v, 4) for k, v in metrics.items() if not k.startswith("backtest")}
    log.info("test metrics: %s", json.dumps(shown))
    log.info("run directory: %s", run.root)
    return metrics, {"datamodule": datamodule, "module": main.module, "fold": main}


def _write_model(run: RunDir, cfg: DictConfig, result: FoldResult) -> None:
    """The model scoring reads (weights, encoder, calibration) and the test fold's files."""
    title = f"{cfg.model.name}: test cut-off {result.fold.test.date()}"
    labels = result.test.target
    if TARGETS[cfg.model.target] == "binary":
        predictions = {"recsys": result.prediction, **result.others}
        write_binary_figures(
            run.root, predictions, labels, title, result.loggers, cfg.model.calibration.num_bins
        )
    else:
        write_value_deciles(run.root, result.prediction, labels)
    frame = pd.DataFrame(
        {
            "customer": result.test.table.index,
            "prediction": result.prediction.numpy(),
            "label": labels.numpy(),
        }
    )
    for name, pred in result.others.items():
        frame[name] = pred.numpy()
    write_atomic(run.path("test_predictions.csv"), frame.to_csv(index=False).encode())
    buffer = io.BytesIO()
    torch.save(result.module.net.state_dict(), buffer)
    write_atomic(run.path(WEIGHTS_FILE), buffer.getvalue())
    state = {
        "target": cfg.model.target,
        "window_days": float(cfg.data.window_days),
        "test_cutoff": str(result.fold.test),
        "value_scale": float(result.module.hparams.value_scale),
        "encoder": result.encoder.state(),
        "calibration": {
            k: (v.tolist() if torch.is_tensor(v) else v) for k, v in result.calibration.items()
        },
        "net": OmegaConf.to_container(cfg.model.net, resolve=True),
    }
    run.write_json(MODEL_FILE, state)

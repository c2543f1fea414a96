"""Train a customer model (`model=customer_churn | customer_purchase | customer_value`) over the
backtest folds of a timestamped log, and write the run directory.

Per fold: fit the network on the training cut-offs, stop early on the validation cut-off, calibrate
probabilities on validation (recsys.models.calibration), and test on the fold's test cut-off beside
the analyst's regression, the BG/NBD anchor and, on a synthetic world, the true probabilities.
Fold 0 (the latest cut-off) gives the run's `test/*` metrics, checkpoint and figures; every fold
gives `backtest/<cut-off>/*`.
"""

from __future__ import annotations

import json
import logging
import time

import hydra
import pandas as pd
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from recsys.data.customers.cutoffs import Fold
from recsys.data.customers.datamodule import CustomerDataModule
from recsys.errors import ConfigError
from recsys.marketing.customer_anchors import anchor_predictions, oracle_predictions
from recsys.models.calibration import apply_calibration, fit_calibration
from recsys.models.customer import TARGETS, CustomerModule
from recsys.models.customer_baselines import fit_predict_baseline, linear_coefficients
from recsys.reports.customer import (
    binary_metrics,
    value_metrics,
    write_binary_figures,
    write_value_deciles,
)
from recsys.run_dir import RunDir

log = logging.getLogger(__name__)
MODEL_FILE = "customer_model.json"  # what scoring needs beside the checkpoint (recsys/marketing/customer_scoring.py)


def train_customers(run: RunDir, cfg: DictConfig, guard) -> tuple[dict[str, float], dict]:
    started = time.time()
    if cfg.get("ckpt_path"):
        raise ConfigError(
            "ckpt_path: customer models train in seconds and are not resumed; start a new run"
        )
    target = cfg.model.target
    if target not in TARGETS:
        raise ConfigError(f"model.target={target!r}: must be one of {' | '.join(TARGETS)}")
    pl.seed_everything(cfg.seed, workers=True)
    datamodule: CustomerDataModule = hydra.utils.instantiate(cfg.data)
    event_log = datamodule.load()
    if target == "value_next" and not event_log.has_value:
        log.warning("%s has no value column: value_next counts events", event_log.name)
    run.write_config(cfg)
    run.write_json("data_report.json", datamodule.report())
    guard.training_started()

    metrics: dict[str, float] = {}
    rows = []
    for i, fold in enumerate(datamodule.folds):
        found, module = _fit_fold(cfg, run, datamodule, fold, target, main=i == 0)
        day = fold.test.strftime("%Y-%m-%d")
        metrics.update({f"backtest/{day}/{k}": v for k, v in found.items()})
        rows.append({"test_cutoff": day, **found})
        if i == 0:
            metrics.update(found)
            objects = {"datamodule": datamodule, "module": module}
    run.write_json("metrics.json", {**metrics, "wall_time_s": time.time() - started})
    (run.root / "backtest.csv").write_text(pd.DataFrame(rows).to_csv(index=False))
    log.info(
        "test metrics: %s",
        json.dumps({k: round(v, 4) for k, v in metrics.items() if "backtest" not in k}),
    )
    log.info("run directory: %s", run.root)
    return metrics, objects


def _fit_fold(cfg, run: RunDir, dm: CustomerDataModule, fold: Fold, target: str, main: bool):
    from recsys.train import resolve_precision

    pl.seed_everything(cfg.seed, workers=True)
    encoder = dm.prepare_fold(fold, target)
    binary = TARGETS[target] == "binary"
    train, valid, test = (dm.splits[k] for k in ("train", "valid", "test"))
    cards = list(encoder.cardinalities.values())
    net = hydra.utils.instantiate(
        cfg.model.net, num_numeric=len(encoder.numeric), cardinalities=cards
    )
    # The analyst's regression first: the yardstick, and (start_from_baseline) the network's start.
    baseline, choice = fit_predict_baseline(dm.splits, cards, binary)
    if binary and cfg.model.start_from_baseline:
        net.start_from_linear(*linear_coefficients(choice["model"]))
    scale = 1.0 if binary else max(float(train.target.mean()), 1e-6)
    module: CustomerModule = hydra.utils.instantiate(
        cfg.model.module, net=net, optimizer=hydra.utils.instantiate(cfg.model.optimizer),
        target=target, value_scale=scale,
    )  # fmt: skip
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    for cb in callbacks:
        if isinstance(cb, pl.callbacks.ModelCheckpoint) and not main:
            cb.dirpath = str(run.checkpoints / "backtest" / fold.test.strftime("%Y-%m-%d"))
    loggers = (
        [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
        if main
        else []
    )
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        precision=resolve_precision(cfg.trainer),
        callbacks=callbacks,
        logger=loggers or False,
    )
    start_state = {k: v.clone() for k, v in module.state_dict().items()}
    start_score = _monitored(module, valid)
    trainer.fit(module, datamodule=dm)
    found: dict[str, float] = {}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        module.load_state_dict(
            torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        )
    found[f"best/{cfg.model.module.monitor}"] = _monitored(module, valid)
    if cfg.model.start_from_baseline and binary and start_score <= found[f"best/{cfg.model.module.monitor}"]:
        # No epoch beat the regression the network started as: keep the regression.
        module.load_state_dict(start_state)
        found[f"best/{cfg.model.module.monitor}"] = start_score
        log.info("fold %s: no epoch beat the starting regression on validation; kept it", fold.test.date())
    out_valid = module.predict_outputs(valid.numeric, valid.categorical)
    out_test = module.predict_outputs(test.numeric, test.categorical)
    name = "logreg" if binary else "ridge"
    others = {name: baseline}
    found[f"{name}/best/{cfg.model.module.monitor}"] = choice["valid_score"]
    others.update(anchor_predictions(cfg.model.get("anchor_bgnbd", True), dm, fold, target))
    others.update(oracle_predictions(dm.log, test.table, dm.window_days, target))

    calibration = {}
    if binary:
        method = cfg.model.calibration.method
        calibration = fit_calibration(method, out_valid, valid.target)
        prediction = apply_calibration(calibration, out_test)
        score = lambda p: binary_metrics(p, test.target, cfg.model.calibration.num_bins)  # noqa: E731
        found.update({f"raw_test/{k}": v for k, v in score(torch.sigmoid(out_test)).items()})
    else:
        prediction = out_test
        score = lambda p: value_metrics(p, test.target)  # noqa: E731
    found.update({f"test/{k}": v for k, v in score(prediction).items()})
    for name, pred in others.items():
        found.update({f"{name}/test/{k}": v for k, v in score(pred).items()})
    found["test/customers"] = float(len(test))
    found["train/rows"] = float(len(train))
    if main:
        _write_main_fold(
            run,
            trainer,
            module,
            encoder,
            calibration,
            fold,
            prediction,
            others,
            test,
            target,
            binary,
            cfg,
            best,
        )
    log.info(
        "fold %s: %s",
        fold.test.date(),
        {k: round(v, 4) for k, v in found.items() if k.endswith(("auc", "log_loss", "mae"))},
    )
    return found, module


def _monitored(module: CustomerModule, split) -> float:
    """The monitored validation score (log loss, or MAE) of the module as it stands."""
    out = module.predict_outputs(split.numeric, split.categorical)
    if module.kind == "binary":
        return float(torch.nn.functional.binary_cross_entropy_with_logits(out, split.target))
    return float((out - split.target).abs().mean())


def _write_main_fold(
    run,
    trainer,
    module,
    encoder,
    calibration,
    fold,
    prediction,
    others,
    test,
    target,
    binary,
    cfg,
    best,
):
    title = f"{cfg.model.name}: test cut-off {fold.test.date()}"
    if binary:
        write_binary_figures(
            run.root, {"recsys": prediction, **others}, test.target, title, trainer.loggers
        )
    else:
        write_value_deciles(run.root, prediction, test.target)
    frame = pd.DataFrame(
        {
            "customer": test.table.index,
            "prediction": prediction.numpy(),
            "label": test.target.numpy(),
        }
    )
    for name, pred in others.items():
        frame[name] = pred.numpy()
    (run.root / "test_predictions.csv").write_text(frame.to_csv(index=False))
    state = {
        "target": target,
        "window_days": float(cfg.data.window_days),
        "test_cutoff": str(fold.test),
        "checkpoint": str(best and __import__("pathlib").Path(best).relative_to(run.root)),
        "encoder": encoder.state(),
        "calibration": {
            k: (v.tolist() if torch.is_tensor(v) else v) for k, v in calibration.items()
        },
        "net": OmegaConf.to_container(cfg.model.net, resolve=True),
    }
    run.write_json(MODEL_FILE, state)

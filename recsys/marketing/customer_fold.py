"""One backtest fold of a customer model: fit on the training cut-offs, pick the epoch on the
validation cut-off, calibrate there, and predict the test cut-off beside every yardstick.

With `model.start_from_baseline` the network starts as the validation-chosen logistic regression
(CANN, recsys/models/components/customer_net.py) and is kept only where an epoch beats that start
on validation, so the model a user gets is never worse on validation than the analyst's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import hydra
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor

from recsys.data.customers.cutoffs import Fold
from recsys.data.customers.datamodule import CustomerDataModule, Split
from recsys.data.customers.features import FeatureEncoder
from recsys.marketing.customer_anchors import anchor_predictions, oracle_predictions
from recsys.models.calibration import apply_calibration, fit_calibration
from recsys.models.customer import TARGETS, CustomerModule
from recsys.models.customer_baselines import fit_predict_baseline, linear_coefficients

log = logging.getLogger(__name__)


@dataclass
class FoldResult:
    fold: Fold
    module: CustomerModule
    encoder: FeatureEncoder
    test: Split
    prediction: Tensor  # calibrated probabilities, or values
    others: dict[str, Tensor]  # yardsticks on the same customers: logreg / ridge, bgnbd, oracle
    calibration: dict
    metrics: dict[str, float] = field(default_factory=dict)
    loggers: list = field(default_factory=list)


def monitored_score(module: CustomerModule, split: Split) -> float:
    """The monitored score (log loss, or MAE) of the module as it stands, on a whole split."""
    out = module.predict_outputs(split.numeric, split.categorical)
    if module.kind == "binary":
        return float(F.binary_cross_entropy_with_logits(out, split.target))
    return float((out - split.target).abs().mean())


def _trainer(cfg: DictConfig, checkpoint_dir: str | None, with_loggers: bool) -> pl.Trainer:
    from recsys.train import resolve_precision

    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    for cb in callbacks:
        if checkpoint_dir and isinstance(cb, pl.callbacks.ModelCheckpoint):
            cb.dirpath = checkpoint_dir
    loggers = []
    if with_loggers:
        loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    return hydra.utils.instantiate(
        cfg.trainer, precision=resolve_precision(cfg.trainer), callbacks=callbacks,
        logger=loggers or False,
    )  # fmt: skip


def fit_fold(
    cfg: DictConfig, dm: CustomerDataModule, fold: Fold, checkpoint_dir: str | None, main: bool
) -> FoldResult:
    target, monitor = cfg.model.target, cfg.model.module.monitor
    binary = TARGETS[target] == "binary"
    pl.seed_everything(cfg.seed, workers=True)
    encoder = dm.prepare_fold(fold, target)
    train, valid, test = (dm.splits[k] for k in ("train", "valid", "test"))
    cards = list(encoder.cardinalities.values())
    net = hydra.utils.instantiate(
        cfg.model.net, num_numeric=len(encoder.columns), cardinalities=cards
    )
    # The analyst's regression first: the yardstick, and (start_from_baseline) the network's start.
    baseline, choice = fit_predict_baseline(dm.splits, cards, binary)
    start_from = binary and cfg.model.start_from_baseline
    if start_from:
        net.start_from_linear(*linear_coefficients(choice["model"]))
    module: CustomerModule = hydra.utils.instantiate(
        cfg.model.module, net=net, optimizer=hydra.utils.instantiate(cfg.model.optimizer),
        target=target, value_scale=1.0 if binary else max(float(train.target.mean()), 1e-6),
    )  # fmt: skip
    start_state = {k: v.clone() for k, v in module.state_dict().items()}
    start_score = monitored_score(module, valid)
    trainer = _trainer(cfg, checkpoint_dir, with_loggers=main)
    trainer.fit(module, datamodule=dm)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        module.load_state_dict(
            torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        )
    found = {f"best/{monitor}": monitored_score(module, valid)}
    if start_from and start_score <= found[f"best/{monitor}"]:
        module.load_state_dict(start_state)  # no epoch beat the regression it started as
        found[f"best/{monitor}"] = start_score
        log.info(
            "fold %s: no epoch beat the starting regression on validation; kept it",
            fold.test.date(),
        )
    name = "logreg" if binary else "ridge"
    found[f"{name}/best/{monitor}"] = choice["valid_score"]
    others = {name: baseline}
    others.update(anchor_predictions(cfg.model.anchor_bgnbd, dm, fold, target))
    others.update(oracle_predictions(dm.log, test.table, dm.window_days, target))

    out_valid = module.predict_outputs(valid.numeric, valid.categorical)
    out_test = module.predict_outputs(test.numeric, test.categorical)
    calibration = {}
    if binary:
        calibration = fit_calibration(cfg.model.calibration.method, out_valid, valid.target)
        prediction = apply_calibration(calibration, out_test)
        found.update(_scores("raw_test", torch.sigmoid(out_test), test.target, cfg))
    else:
        prediction = out_test
    found.update(_scores("test", prediction, test.target, cfg))
    for other, pred in others.items():
        found.update(_scores(f"{other}/test", pred, test.target, cfg))
    found.update({"test/customers": float(len(test)), "train/rows": float(len(train))})
    shown = {k: round(v, 4) for k, v in found.items() if k.endswith(("/auc", "/log_loss", "/mae"))}
    log.info("fold %s: %s", fold.test.date(), shown)
    return FoldResult(
        fold, module, encoder, test, prediction, others, calibration, found, trainer.loggers
    )


def _scores(prefix: str, pred: Tensor, y: Tensor, cfg: DictConfig) -> dict[str, float]:
    from recsys.reports.customer import binary_metrics, value_metrics

    if TARGETS[cfg.model.target] == "binary":
        found = binary_metrics(pred, y, cfg.model.calibration.num_bins)
    else:
        found = value_metrics(pred, y)
    return {f"{prefix}/{k}": v for k, v in found.items()}

"""After training a model with a propensity head: fit calibration on validation, evaluate on test
before and after it, set it beside a one-hot logistic regression, write the reliability diagram and
the lift table, and save the calibration as the run's calibration.pt (`RunDir.load_scorer` applies
it; the checkpoint stays as Lightning saved it).
"""

from __future__ import annotations

import logging
import math

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor

from recsys.data.datamodule import InteractionDataModule
from recsys.metrics.classification import classification_metrics, lift_table, reliability_table
from recsys.models.calibration import fit_calibration
from recsys.models.contracts import PropensityScorer, has_propensity_head
from recsys.models.logreg import fit_predict_logreg
from recsys.models.retrieval import RetrievalModule
from recsys.reports.propensity_plots import lift_figure, reliability_figure, save_figure
from recsys.reports.run_report import RunReport
from recsys.run_dir import RunDir

log = logging.getLogger(__name__)


class PropensityReport(RunReport):
    """Runs where the model has a propensity head; writes its files into `run_dir`.

    calibration: `model.calibration` (method platt | temperature | isotonic | none, num_bins,
        baseline_logreg); None = those defaults.
    """

    def __init__(self, run_dir: str, calibration: dict | None = None):
        super().__init__()
        self.run = RunDir(run_dir)
        self.calibration = dict(calibration or {})

    def report(
        self, trainer: pl.Trainer, module: RetrievalModule, datamodule: InteractionDataModule
    ) -> dict[str, float]:
        if not has_propensity_head(module.scorer):
            return {}
        return propensity_report(module.scorer, datamodule, self.calibration, self.run, trainer)


@torch.no_grad()
def head_logits(scorer: PropensityScorer, rows: dict[str, Tensor], chunk: int = 2**16) -> Tensor:
    """Raw head logits (N,) for labelled rows, on the scorer's device, a chunk at a time; on CPU."""
    device = next(scorer.parameters()).device
    users, items = rows["users"].to(device), rows["items"].to(device)
    with torch.autocast(device_type=device.type, enabled=False):
        out = [
            scorer.propensity_logit(u, i).float()
            for u, i in zip(users.split(chunk), items.split(chunk), strict=True)
        ]
    return torch.cat(out).cpu()


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{k}": v for k, v in values.items()}


def _table_frame(table: dict[str, Tensor]) -> pd.DataFrame:
    return pd.DataFrame({k: v.numpy() for k, v in table.items()})


def propensity_report(
    scorer: PropensityScorer,
    datamodule: InteractionDataModule,
    calibration: dict,
    run: RunDir,
    trainer: pl.Trainer | None = None,
) -> dict[str, float]:
    """Calibrate on validation, evaluate on test; returns flat metrics for metrics.json.

    The fitted calibration goes to the run's calibration.pt; with a trainer, figures also go to
    its TensorBoard loggers.
    """
    loggers = trainer.loggers if trainer is not None else []
    step = trainer.global_step if trainer is not None else 0
    valid, test = datamodule.labelled_rows("val"), datamodule.labelled_rows("test")
    if valid is None or test is None:
        log.warning("propensity head present but validation / test rows have no labels: skipped")
        return {}
    method, num_bins = str(calibration.get("method", "platt")), int(calibration.get("num_bins", 15))
    was_training = scorer.training
    scorer.eval()
    # Fit on corrected logits: validation holds the real base rate, training maybe not.
    keep = float(scorer.log_keep_rate.exp())
    val_logits = head_logits(scorer, valid) + math.log(keep)
    fitted = fit_calibration(method, val_logits, valid["labels"])
    scorer.set_calibration(**fitted)

    raw = head_logits(scorer, test)
    states = {
        "uncalibrated": scorer.calibrate_logit(raw.to(scorer.platt_a.device), calibrated=False),
        "calibrated": scorer.calibrate_logit(raw.to(scorer.platt_a.device)),
    }
    states = {k: v.detach().float().cpu() for k, v in states.items()}
    labels = test["labels"].float()
    metrics = {"propensity/label_negative_keep_rate": keep}
    metrics["propensity/calibration/a"] = float(scorer.platt_a)
    metrics["propensity/calibration/b"] = float(scorer.platt_b)
    metrics["propensity/calibration/isotonic_knots"] = float(scorer.iso_x.numel())
    for name, probs in states.items():
        prefix = "test/propensity" if name == "calibrated" else "test/propensity/uncalibrated"
        values = classification_metrics(probs, labels, num_bins)
        if "label_probs" in test:  # synthetic data: how far from the true probabilities
            values["mae_true"] = float((probs - test["label_probs"].float()).abs().mean())
        metrics.update(_prefixed(prefix, values))

    lift = lift_table(states["calibrated"], labels)
    metrics["test/propensity/top_decile_lift"] = float(lift["lift"][0])
    _table_frame(lift).to_csv(run.path("propensity_lift.csv"), index=False)
    reliability = {k: reliability_table(v, labels, num_bins) for k, v in states.items()}
    pd.concat(
        [_table_frame(t).assign(state=k) for k, t in reliability.items()], ignore_index=True
    ).to_csv(run.path("propensity_reliability.csv"), index=False)
    save_figure(
        reliability_figure(reliability, f"Reliability on test ({num_bins} equal-mass bins)"),
        run.path("propensity_reliability.png"),
        loggers,
        "propensity/reliability",
        step,
    )
    save_figure(
        lift_figure(lift, "Lift and cumulative gain by decile (test exposures)"),
        run.path("propensity_lift.png"),
        loggers,
        "propensity/lift",
        step,
    )
    text = _table_frame(lift).round(4).to_string(index=False)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):  # indented = a preformatted block in its markdown
            logger.experiment.add_text(
                "propensity/lift_table", "    " + text.replace("\n", "\n    "), step
            )

    if calibration.get("baseline_logreg", True):
        data = datamodule.load()
        train = datamodule.labelled_rows("train")
        probs, info = fit_predict_logreg(
            train, valid, test, data.num_users, data.num_items, keep_rate=keep
        )
        values = classification_metrics(probs, labels, num_bins)
        if "label_probs" in test:
            values["mae_true"] = float((probs - test["label_probs"].float()).abs().mean())
        metrics.update(_prefixed("baseline_logreg/test", values))
        metrics["baseline_logreg/C"] = float(info["C"])

    run.write_calibration(scorer.calibration_state())
    scorer.train(was_training)
    return metrics

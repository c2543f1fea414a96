"""What a customer model is judged on, and the files a marketer reads.

Probabilities (churn, purchase): AUC, log loss, ECE (equal-mass bins), Brier, PR-AUC; the reliability
diagram and the decile lift / gain chart. Values: MAE, RMSE, and the share of the next period's value
that the top decile by prediction holds (what a top-10% campaign would reach).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from recsys.atomic_files import write_atomic
from recsys.metrics.classification import classification_metrics, lift_table, reliability_table
from recsys.reports.propensity_plots import lift_figure, reliability_figure, save_figure

RENAMED = {"logloss": "log_loss"}
KEPT = ("auc", "log_loss", "ece", "brier", "pr_auc", "base_rate", "mean_predicted")


def binary_metrics(probs: Tensor, labels: Tensor, num_bins: int = 15) -> dict[str, float]:
    found = classification_metrics(probs, labels, num_bins)
    found = {RENAMED.get(k, k): v for k, v in found.items()}
    return {k: found[k] for k in KEPT}


def top_decile_share(pred: Tensor, actual: Tensor) -> float:
    """Share of the total realised value held by the 10% of customers predicted highest."""
    k = max(1, pred.numel() // 10)
    top = torch.topk(pred.double(), k).indices
    total = actual.double().sum()
    return float(actual.double()[top].sum() / total) if total > 0 else float("nan")


def value_metrics(pred: Tensor, actual: Tensor) -> dict[str, float]:
    err = pred.double() - actual.double()
    return {
        "mae": float(err.abs().mean()),
        "rmse": float(err.pow(2).mean().sqrt()),
        "top_decile_share": top_decile_share(pred, actual),
        "mean_predicted": float(pred.double().mean()),
        "mean_actual": float(actual.double().mean()),
    }


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, frame.to_csv(index=False).encode())


def write_binary_figures(
    run_root: Path,
    predictions: dict[str, Tensor],
    labels: Tensor,
    title: str,
    loggers=(),
    num_bins: int = 15,
) -> None:
    """customer_reliability.png (every model in `predictions`), customer_lift.png and
    customer_deciles.csv (the first model: recsys's calibrated one)."""
    tables = {name: reliability_table(p, labels, num_bins) for name, p in predictions.items()}
    save_figure(
        reliability_figure(tables, title),
        run_root / "customer_reliability.png",
        loggers,
        "customer/reliability",
    )
    first = next(iter(predictions.values()))
    lift = lift_table(first, labels)
    save_figure(lift_figure(lift, title), run_root / "customer_lift.png", loggers, "customer/lift")
    _write_frame(
        pd.DataFrame({k: v.numpy() for k, v in lift.items()}), run_root / "customer_deciles.csv"
    )


def write_value_deciles(run_root: Path, pred: Tensor, actual: Tensor) -> None:
    """customer_value_deciles.csv: predicted and realised value per decile of the prediction."""
    order = torch.argsort(pred, descending=True, stable=True)
    rows = []
    for d, idx in enumerate(torch.tensor_split(order, 10), start=1):
        rows.append({"decile": d, "customers": idx.numel(), "mean_predicted": float(pred[idx].mean()),
                     "mean_actual": float(actual[idx].mean()), "actual_total": float(actual[idx].sum())})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["cumulative_share"] = frame["actual_total"].cumsum() / max(
        frame["actual_total"].sum(), 1e-12
    )
    _write_frame(frame, run_root / "customer_value_deciles.csv")

"""Propensity figures for the run directory and TensorBoard: reliability diagram, lift chart.

Built with `matplotlib.figure.Figure`, not pyplot: they render on a headless box and leave the
backend of a notebook or application that imports recsys alone.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor


def reliability_figure(tables: dict[str, dict[str, Tensor]], title: str) -> Figure:
    """Observed conversion rate against mean predicted probability per equal-mass bin, one line per
    model state (e.g. before / after calibration); the diagonal is perfect calibration."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    top = 0.0
    for name, table in tables.items():
        x, y = table["mean_predicted"].numpy(), table["observed_rate"].numpy()
        ax.plot(x, y, marker="o", markersize=3, label=name)
        top = max(top, float(x.max()), float(y.max()))
    top = min(1.0, top * 1.05 + 0.01)
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.set(
        xlim=(0, top), ylim=(0, top), xlabel="mean predicted probability", ylabel="observed rate"
    )
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def lift_figure(table: dict[str, Tensor], title: str) -> Figure:
    """Lift per decile (bars) and cumulative gain (line) against the share of users targeted."""
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    deciles = table["decile"].numpy()
    left.bar(deciles, table["lift"].numpy(), color="tab:blue")
    left.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    left.set(xlabel="decile (1 = highest predicted)", ylabel="lift", xticks=deciles)
    share = deciles / deciles.max()
    right.plot([0, *share], [0, *table["cumulative_gain"].numpy()], marker="o", label="model")
    right.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="random")
    right.set(
        xlabel="share targeted", ylabel="share of conversions caught", xlim=(0, 1), ylim=(0, 1)
    )
    right.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path, loggers=(), tag: str = "", step: int = 0) -> None:
    """PNG into the run directory, and the same figure into every TensorBoard logger."""
    fig.savefig(path, dpi=120)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tag, fig, global_step=step, close=False)

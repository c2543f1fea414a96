"""Pictures for segment reports: the k-selection curves and a 2-D map of users by segment.

Figures are built with `matplotlib.figure.Figure`, not pyplot: they render on a headless box and
leave the backend of a notebook or application that imports recsys alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

if TYPE_CHECKING:
    from recsys.marketing.segments import KSelection


def plot_k_selection(selection: KSelection, path: Path) -> Path:
    """Inertia (elbow) and silhouette against k, the chosen k marked on both."""
    t = selection.table
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    left.plot(t["k"], t["inertia"], "o-")
    left.set(xlabel="k", ylabel="inertia (within-segment sum of squares)", title="Elbow")
    right.plot(t["k"], t["silhouette"], "o-", color="tab:green")
    right.set(xlabel="k", ylabel="silhouette (sampled)", title="Silhouette")
    for ax in (left, right):
        ax.axvline(selection.k, color="tab:red", ls="--", label=f"chosen k={selection.k}")
        ax.legend()
    fig.suptitle(selection.reason, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_projection(
    x: np.ndarray, labels: np.ndarray, path: Path, seed: int = 0, max_points: int = 20000
) -> Path:
    """PCA of the clustered matrix onto 2 axes, users coloured by segment (a sample if many)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), max_points, replace=False) if len(x) > max_points else slice(None)
    pca = PCA(n_components=2, random_state=seed).fit(x)
    xy = pca.transform(x[pick])
    lab = labels[pick]
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    cmap = colormaps["tab10" if labels.max() < 10 else "tab20"]
    for s in np.unique(labels):
        mask = lab == s
        ax.scatter(xy[mask, 0], xy[mask, 1], s=4, alpha=0.5, color=cmap(s % cmap.N), label=f"{s}")
        cx, cy = xy[mask].mean(0) if mask.any() else (np.nan, np.nan)
        ax.annotate(str(s), (cx, cy), weight="bold", ha="center", va="center")
    var = pca.explained_variance_ratio_
    ax.set(xlabel=f"PC1 ({var[0]:.0%} of variance)", ylabel=f"PC2 ({var[1]:.0%})",
           title=f"Users by segment (k={labels.max() + 1})")  # fmt: skip
    ax.legend(title="segment", markerscale=3, fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path

"""User segments from any trained run: K-means (Lloyd, 1982; k-means++ seeding, Arthur & Vassilvitskii,
2007) on the learned user embeddings, optionally joined with the users' profile features.

`k="auto"` fits every k in a range and picks the elbow of the inertia curve among the k whose
silhouette (Rousseeuw, 1987) is close to the best. Silhouette alone under-counts groups whose
centres lie near each other (it prefers a few coarse blobs); inertia alone always falls with k.
The elbow is where adding one more cluster stops paying: the largest ratio between the inertia
drop into k and the drop out of it. Where groups nest (pairs of close groups), both levels make
an elbow and the sharper one wins; `k_selection.png` shows both, and `k=<n>` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from torch import nn

from recsys.atomic_files import write_json
from recsys.data.interactions import FeatureTable
from recsys.marketing.plots import plot_k_selection, plot_projection
from recsys.marketing.profiles import (
    feature_distributions,
    profile_table,
    to_markdown,
    users_with_history,
)
from recsys.run_dir import RunDir


@dataclass
class KSelection:
    """Every k tried, its inertia and silhouette, and which k was chosen and why."""

    table: pd.DataFrame  # columns k, inertia, silhouette, elbow_ratio, eligible
    k: int
    elbow_k: int
    silhouette_k: int
    reason: str


@torch.no_grad()
def user_embeddings(scorer: nn.Module, num_users: int, chunk: int = 65536) -> np.ndarray:
    """(U, D) float64 user vectors from the scorer contract, computed a chunk of users at a time."""
    was_training = scorer.training
    scorer.eval()
    parts = [
        scorer.user_embedding(torch.arange(s, min(s + chunk, num_users))).float().cpu()
        for s in range(0, num_users, chunk)
    ]
    scorer.train(was_training)
    return torch.cat(parts).double().numpy()


def normalize_rows(x: np.ndarray, how: str) -> np.ndarray:
    """'l2': cosine geometry (taste direction, not activity-driven length); 'standard'; 'none'."""
    x = x[:, x.std(0) > 1e-12]  # constant columns (MF's bias slot) carry no information
    if how == "l2":
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if how == "standard":
        return (x - x.mean(0)) / x.std(0)
    if how == "none":
        return x
    raise ValueError(f"normalize must be 'l2', 'standard' or 'none', got {how!r}")


def profile_matrix(features: FeatureTable) -> np.ndarray:
    """(U, F) standardised profile columns: one-hot categoricals (code 0 = unknown dropped),
    multi-hot fields and numeric fields. Empty (U, 0) when the data have no user features."""
    cols: list[np.ndarray] = []
    for name, codes in features.categorical.items():
        card = features.cardinality.get(name, int(codes.max()) + 1)
        cols.append(np.eye(card)[codes.numpy()][:, 1:])
    cols += [m.double().numpy() for m in features.multi_hot.values()]
    cols += [v.double().numpy()[:, None] for v in features.numeric.values()]
    if not cols:
        return np.zeros((0, 0))
    x = np.concatenate(cols, axis=1)
    x = x[:, x.std(0) > 1e-12]
    return (x - x.mean(0)) / x.std(0)


def segment_matrix(
    embeddings: np.ndarray,
    features: FeatureTable | None = None,
    normalize: str = "l2",
    feature_weight: float = 0.5,
) -> np.ndarray:
    """The matrix K-means sees: normalised embeddings, plus profile features scaled so that their
    block carries `feature_weight` times the total variance of the embedding block."""
    x = normalize_rows(embeddings, normalize)
    if features is None or not features or feature_weight <= 0:
        return x
    p = profile_matrix(features)
    if p.shape[0] != x.shape[0]:
        raise ValueError(f"{p.shape[0]} profile rows for {x.shape[0]} users")
    scale = np.sqrt(feature_weight * x.var(0).sum() / max(p.var(0).sum(), 1e-12))
    return np.concatenate([x, scale * p], axis=1)


def fit_kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 10) -> KMeans:
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)


def choose_k(
    x: np.ndarray,
    k_min: int = 2,
    k_max: int = 12,
    seed: int = 0,
    n_init: int = 10,
    silhouette_sample: int = 5000,
    silhouette_tolerance: float = 0.5,
) -> KSelection:
    """Fit k = k_min-1 .. k_max+1 (the ends give the drops around each candidate) and choose.

    Eligible: silhouette >= `silhouette_tolerance` x the best silhouette (a real partition, not an
    arbitrary cut of one blob). Chosen: the eligible k with the largest elbow ratio
    (I(k-1) - I(k)) / (I(k) - I(k+1)).
    """
    k_min, k_max = max(2, k_min), min(k_max, len(x) - 2)
    if k_max < k_min:
        raise ValueError(f"too few users ({len(x)}) to choose k in [{k_min}, {k_max}]")
    ks = list(range(k_min - 1, k_max + 2))
    fits = {k: fit_kmeans(x, k, seed, n_init) for k in ks}
    inertia = np.array([fits[k].inertia_ for k in ks])
    sample = min(silhouette_sample, len(x))
    sil = {
        k: silhouette_score(x, fits[k].labels_, sample_size=sample, random_state=seed)
        for k in ks
        if k >= 2
    }
    drops = np.maximum(-np.diff(inertia), 1e-12 * inertia[0])  # drops[i] = I(ks[i]) - I(ks[i+1])
    rows = []
    for i, k in enumerate(ks[1:-1], start=1):
        rows.append(
            {
                "k": k,
                "inertia": inertia[i],
                "silhouette": sil[k],
                "elbow_ratio": drops[i - 1] / drops[i],
            }
        )
    table = pd.DataFrame(rows)
    best_sil = table["silhouette"].max()
    table["eligible"] = table["silhouette"] >= silhouette_tolerance * best_sil
    silhouette_k = int(table.loc[table["silhouette"].idxmax(), "k"])
    elbow_k = int(table.loc[table["elbow_ratio"].idxmax(), "k"])
    k = int(table[table["eligible"]].sort_values("elbow_ratio", ascending=False)["k"].iloc[0])
    reason = (
        f"k={k}: sharpest inertia elbow (drop ratio {table.set_index('k').loc[k, 'elbow_ratio']:.1f}) "
        f"among k with silhouette >= {silhouette_tolerance:g} x best ({best_sil:.3f} at k={silhouette_k})"
    )
    return KSelection(table, k, elbow_k, silhouette_k, reason)


@dataclass
class SegmentResult:
    segments: pd.DataFrame  # user_id, user_idx, segment (-1: no training history, not segmented)
    profiles: pd.DataFrame  # one row per segment
    selection: KSelection | None  # set when k was chosen automatically
    summary: dict
    files: dict[str, Path]


def segment_run(
    run_dir: str | Path,
    k: int | str = "auto",
    out_dir: str | Path | None = None,
    features: bool = False,
    feature_weight: float = 0.5,
    normalize: str = "l2",
    k_min: int = 2,
    k_max: int = 12,
    n_init: int = 10,
    silhouette_sample: int = 5000,
    silhouette_tolerance: float = 0.5,
    checkpoint: str = "best",
    top: int = 3,
    seed: int = 0,
) -> SegmentResult:
    """Segment the users of a finished run and write everything into `<run_dir>/segments/`.

    The segments come from the run directory alone (scorer, saved user features, training pairs,
    vocabularies); the profiles need the training labels too (conversion rates), so they read the
    rebuilt data (`RunDir.load_data`)."""
    run = RunDir(run_dir)
    scorer, checkpoint_path = run.load_scorer(checkpoint)
    inputs = run.scorer_inputs()
    num_users = scorer.num_users
    out = Path(out_dir) if out_dir is not None else run.path("segments")
    out.mkdir(parents=True, exist_ok=True)
    known = users_with_history(run.seen_pairs("train")[0], num_users)
    x_all = segment_matrix(
        user_embeddings(scorer, num_users),
        inputs.user_features if features else None,
        normalize,
        feature_weight,
    )
    x = x_all[known]
    files: dict[str, Path] = {}
    selection = None
    if str(k) == "auto":
        selection = choose_k(x, k_min, k_max, seed, n_init, silhouette_sample, silhouette_tolerance)
        chosen = selection.k
        selection.table.to_csv(out / "k_selection.csv", index=False)
        files["k_selection"] = plot_k_selection(selection, out / "k_selection.png")
    elif str(k).isdigit() and int(k) >= 2:
        chosen = int(k)
    else:
        raise ValueError(f"k must be 'auto' or an integer >= 2, got {k!r}")
    model = fit_kmeans(x, chosen, seed, n_init)
    segments = np.full(num_users, -1, dtype=np.int64)
    segments[known] = model.labels_
    frame = pd.DataFrame(
        {
            "user_id": run.vocabulary("users"),
            "user_idx": np.arange(num_users),
            "segment": segments,
        }
    )
    frame.to_parquet(out / "segments.parquet", index=False)

    data = run.load_data().data
    profiles = profile_table(data, segments, run.per_user_metrics(), top)
    profiles.to_csv(out / "profiles.csv", index=False)
    (out / "profiles.md").write_text(to_markdown(profiles))
    feature_distributions(data, segments, chosen).to_csv(
        out / "feature_distributions.csv", index=False
    )
    files["projection"] = plot_projection(x, model.labels_, out / "projection.png", seed)

    sample = min(silhouette_sample, len(x))
    summary = {
        "run_dir": str(run.root),
        "checkpoint": str(checkpoint_path),
        "k": chosen,
        "k_mode": "auto" if selection is not None else "fixed",
        "k_reason": selection.reason if selection is not None else f"k={chosen} (given)",
        "silhouette": float(
            silhouette_score(x, model.labels_, sample_size=sample, random_state=seed)
        ),
        "inertia": float(model.inertia_),
        "users_segmented": int(known.sum()),
        "users_without_history": int((~known).sum()),
        "matrix": {
            "normalize": normalize,
            "profile_features": features,
            "feature_weight": feature_weight,
            "columns": int(x.shape[1]),
        },
    }
    truth = run.read_json("data_report.json").get("true_user_groups")
    if truth is not None:  # synthetic data know the real groups: say how well they were recovered
        summary["adjusted_rand_index_vs_true_groups"] = float(
            adjusted_rand_score(np.asarray(truth)[known], model.labels_)
        )
    write_json(out / "summary.json", summary)
    for name in (
        "segments.parquet",
        "profiles.csv",
        "profiles.md",
        "feature_distributions.csv",
        "summary.json",
    ):
        files[name.replace(".", "_")] = out / name
    return SegmentResult(frame, profiles, selection, summary, files)

"""Segment profiles a marketer can read: size, activity, what each segment buys more of than
everyone else (item categories and items), who they are (profile features), how often they
convert and how well the model serves them.

"More of" is measured as excess share: a value's share inside the segment minus its share over
all users, shown with the lift (the ratio of the two). Ranking by excess rather than by lift keeps
rare values with a large ratio but a handful of interactions out of the headline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from recsys.data.interactions import FeatureTable, InteractionData

ITEM_CATEGORY_FIELDS = ("category", "genres", "genre", "categories")  # preferred, in this order


def value_names(data: InteractionData, table: FeatureTable, name: str, width: int) -> list[str]:
    """Readable names of a feature's codes (or multi-hot columns); `name=code` where unknown.

    MovieLens genres and age buckets are named from the loader's own constants.
    """
    names = None
    if data.name == "ml-100k":
        from recsys.data.sources.movielens import AGE_BUCKETS, GENRES

        spans = [f"{a}-{b - 1}" for a, b in zip(AGE_BUCKETS[:-1], AGE_BUCKETS[1:], strict=True)]
        ages = ["unknown", f"<{AGE_BUCKETS[0]}", *spans, f"{AGE_BUCKETS[-1]}+"]
        names = {"genres": GENRES, "age_bucket": ages}.get(name)
    if names is not None and len(names) == width:
        return [str(n) for n in names]
    return [f"{name}={i}" for i in range(width)]


def item_category_field(features: FeatureTable) -> tuple[str, np.ndarray] | None:
    """(field name, (I, V) membership matrix) of the item field that best reads as a category."""
    fields = {**features.categorical, **features.multi_hot}
    if not fields:
        return None
    name = next((n for n in ITEM_CATEGORY_FIELDS if n in fields), next(iter(fields)))
    values = fields[name]
    if name in features.multi_hot:
        return name, values.double().numpy()
    card = features.cardinality.get(name, int(values.max()) + 1)
    return name, np.eye(card)[values.numpy()]


def excess_summary(
    share: np.ndarray, overall: np.ndarray, names: list[str], top: int = 3, skip: tuple = ()
) -> list[str]:
    """Per segment, the `top` values most over-represented: 'name 23% (1.8x)'."""
    out = []
    for row in share:
        excess = row - overall
        excess[list(skip)] = -np.inf
        order = [i for i in np.argsort(-excess)[:top] if excess[i] > 0]
        out.append(
            ", ".join(f"{names[i]} {row[i]:.1%} ({row[i] / overall[i]:.1f}x)" for i in order)
        )
    return out


def shares(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-normalised (segment) shares and the overall share of each column."""
    seg = counts / np.maximum(counts.sum(1, keepdims=True), 1e-12)
    overall = counts.sum(0) / max(counts.sum(), 1e-12)
    return seg, overall


def feature_distributions(data: InteractionData, segments: np.ndarray, k: int) -> pd.DataFrame:
    """Long table: segment, feature, value, share, overall_share, lift; categorical user features."""
    known = segments >= 0
    rows = []
    features = data.user_features
    for name, codes in {**features.categorical, **features.multi_hot}.items():
        if name in features.multi_hot:
            member = codes.double().numpy()[known]
        else:
            card = features.cardinality.get(name, int(codes.max()) + 1)
            member = np.eye(card)[codes.numpy()[known]]
        counts = np.stack([member[segments[known] == s].sum(0) for s in range(k)])  # (k, V)
        seg, overall = shares(counts)
        names = value_names(data, features, name, counts.shape[1])
        for s in range(k):
            for v in np.nonzero(counts.sum(0))[0]:
                rows.append({"segment": s, "feature": name, "value": names[v], "share": seg[s, v],
                             "overall_share": overall[v], "lift": seg[s, v] / overall[v]})  # fmt: skip
    return pd.DataFrame(
        rows, columns=["segment", "feature", "value", "share", "overall_share", "lift"]
    )


def profile_table(
    data: InteractionData,
    segments: np.ndarray,
    per_user_metrics: pd.DataFrame | None = None,
    top: int = 3,
    user_scores: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per segment (segment -1 = users without training history are left out).

    segments: (U,) segment of each user index, -1 where the user has no training interaction.
    user_scores: extra (U,) per-user numbers averaged per segment under their own names, e.g.
    {"mean_propensity": P(convert) of each user from a propensity head}.
    """
    k = int(segments.max()) + 1
    users = np.bincount(segments[segments >= 0], minlength=k)
    train = data.train
    u, i = train.users.numpy(), train.items.numpy()
    seg_of_row = segments[u]
    keep = seg_of_row >= 0
    seg_of_row, u, i = seg_of_row[keep], u[keep], i[keep]
    item_counts = np.bincount(seg_of_row * data.num_items + i, minlength=k * data.num_items)
    item_counts = item_counts.reshape(k, data.num_items).astype(np.float64)  # (k, I)
    per_user = np.bincount(u, minlength=data.num_users)

    table = pd.DataFrame({"segment": np.arange(k), "users": users, "share": users / users.sum()})
    table["interactions_per_user"] = item_counts.sum(1) / np.maximum(users, 1)
    table["median_interactions"] = [
        float(np.median(per_user[segments == s])) if users[s] else 0.0 for s in range(k)
    ]
    if train.labels is not None:
        conv = np.bincount(seg_of_row, weights=train.labels.numpy()[keep], minlength=k)
        table["conversion_rate"] = conv / np.maximum(item_counts.sum(1), 1)
    if per_user_metrics is not None and len(per_user_metrics):
        seg = segments[per_user_metrics["user_idx"].to_numpy()]
        for metric in [c for c in ("ndcg@10", "recall@10") if c in per_user_metrics]:
            values = per_user_metrics[metric].to_numpy()
            ok = seg >= 0
            table[f"test_{metric}"] = np.bincount(seg[ok], values[ok], minlength=k) / np.maximum(
                np.bincount(seg[ok], minlength=k), 1
            )

    for name, values in (user_scores or {}).items():
        ok = segments >= 0
        values = np.asarray(values, dtype=np.float64)
        table[name] = np.bincount(segments[ok], values[ok], minlength=k) / np.maximum(users, 1)

    category = item_category_field(data.item_features)
    if category is not None:
        name, member = category
        seg, overall = shares(item_counts @ member)
        names = value_names(data, data.item_features, name, member.shape[1])
        skip = () if name in data.item_features.multi_hot else (0,)
        table[f"top_{name}"] = excess_summary(seg, overall, names, top, skip)
    titles = data.item_titles if data.item_titles is not None else data.item_ids
    seg, overall = shares(item_counts)
    table["top_items"] = excess_summary(seg, overall, [str(t) for t in titles], top)

    dist = feature_distributions(data, segments, k)
    for name in dict.fromkeys(dist["feature"]):
        part = dist[(dist["feature"] == name) & (dist["share"] > 0)].copy()
        part["excess"] = part["share"] - part["overall_share"]
        best = part.sort_values("excess", ascending=False).groupby("segment").head(1)
        text = best.set_index("segment").apply(
            lambda r: f"{r['value']} {r['share']:.0%} ({r['lift']:.1f}x)", axis=1
        )
        table[name] = table["segment"].map(text).fillna("")
    for name, values in data.user_features.numeric.items():
        v = values.double().numpy()
        ok = segments >= 0
        table[f"{name}_mean"] = np.bincount(segments[ok], v[ok], minlength=k) / np.maximum(users, 1)
    return table


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table without the optional `tabulate` dependency."""

    def cell(v: object) -> str:
        if isinstance(v, float | np.floating):
            return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}f}"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def users_with_history(train_users: torch.Tensor, num_users: int) -> np.ndarray:
    """(U,) bool: the user has at least one training interaction (others are not segmented)."""
    return (torch.bincount(train_users, minlength=num_users) > 0).numpy()

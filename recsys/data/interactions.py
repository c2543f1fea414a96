"""Tensor containers for a loaded data set: interactions per split, vocabularies, side features.

Every data source (synthetic, MovieLens, user logs) returns one `InteractionData`; the datamodule,
the baselines and the exporter only ever see this, never a file format.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor


@dataclass
class Interactions:
    """One split as parallel 1-D tensors of contiguous indices (plus optional per-row fields)."""

    users: Tensor  # (N,) int64
    items: Tensor  # (N,) int64
    timestamps: Tensor | None = None  # (N,) int64, seconds
    ratings: Tensor | None = None  # (N,) float32
    labels: Tensor | None = None  # (N,) float32 in {0, 1}: converted after exposure
    label_probs: Tensor | None = None  # (N,) float32: true P(convert), synthetic data only

    def __post_init__(self) -> None:
        self.users = torch.as_tensor(self.users, dtype=torch.int64)
        self.items = torch.as_tensor(self.items, dtype=torch.int64)
        if self.users.shape != self.items.shape or self.users.dim() != 1:
            raise ValueError(
                f"users {tuple(self.users.shape)} and items {tuple(self.items.shape)} must be equal 1-D"
            )

    def __len__(self) -> int:
        return int(self.users.numel())

    def subset(self, index: Tensor) -> Interactions:
        """Rows selected by a boolean mask or an index tensor, every optional field kept aligned."""
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return Interactions(
            self.users[index],
            self.items[index],
            pick(self.timestamps),
            pick(self.ratings),
            pick(self.labels),
            pick(self.label_probs),
        )

    def fingerprint(self) -> str:
        """Order-independent sha256 of the (user, item) pairs: two runs share a test set iff equal."""
        key = (self.users * (int(self.items.max()) + 1 if len(self) else 1) + self.items).numpy()
        return hashlib.sha256(np.sort(key).tobytes()).hexdigest()


@dataclass
class FeatureTable:
    """Side features of users or items, one row per index.

    categorical: name -> (N,) int64 codes, 0 reserved for unknown.
    multi_hot:   name -> (N, V) float32 0/1 (e.g. genres).
    numeric:     name -> (N,) float32, already standardised.
    cardinality: name -> number of codes (categorical) or width V (multi-hot).
    """

    categorical: dict[str, Tensor] = field(default_factory=dict)
    multi_hot: dict[str, Tensor] = field(default_factory=dict)
    numeric: dict[str, Tensor] = field(default_factory=dict)
    cardinality: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.categorical or self.multi_hot or self.numeric)

    def names(self) -> list[str]:
        return [*self.categorical, *self.multi_hot, *self.numeric]


@dataclass
class InteractionData:
    """A whole data set, ready for training: splits share one index space (the vocabularies)."""

    train: Interactions
    valid: Interactions
    test: Interactions
    user_ids: np.ndarray  # index -> raw user id
    item_ids: np.ndarray  # index -> raw item id
    user_features: FeatureTable = field(default_factory=FeatureTable)
    item_features: FeatureTable = field(default_factory=FeatureTable)
    item_titles: np.ndarray | None = None  # index -> human-readable title, where the data has one
    report: dict = field(
        default_factory=dict
    )  # what loading and cleaning did, saved as data_report.json
    name: str = "data"

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def summary(self) -> dict:
        """Sizes and activity quantiles, printed at the start of every run."""
        n = len(self.train) + len(self.valid) + len(self.test)
        per_user = torch.bincount(self.train.users, minlength=self.num_users).double()
        q = torch.quantile(per_user, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
        return {
            "name": self.name,
            "users": self.num_users,
            "items": self.num_items,
            "interactions": n,
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
            "density": n / max(1, self.num_users * self.num_items),
            "train_per_user_quantiles": dict(
                zip(["min", "q25", "median", "q75", "max"], [float(v) for v in q], strict=True)
            ),
            "user_features": self.user_features.names(),
            "item_features": self.item_features.names(),
        }

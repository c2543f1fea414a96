"""The contracts the LightningModule, metrics, reports and exporter are written against.

`Scorer` is what every model component implements; `PropensityScorer` adds the calibrated
P(convert | user, item) head. Code that trains, evaluates or exports a model asks for these, never
for a class, so a new model family plugs in by implementing the methods. `ScorerInputs` is what the
data tell a scorer's constructor (sizes, side features, training counts): built from the data at
training time, saved in the run directory, and read back by export without touching the data files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from recsys.data.interactions import FeatureTable, InteractionData


@runtime_checkable
class Scorer(Protocol):
    """Scores users against items through one dot product of their embeddings."""

    num_users: int
    num_items: int

    def user_embedding(self, users: Tensor) -> Tensor:
        """(B, D) vectors of user indices."""

    def item_embedding(self, items: Tensor) -> Tensor:
        """(N, D) vectors of item indices; score(u, i) = <user_embedding(u), item_embedding(i)>."""

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """(B,) scores of aligned user and item indices."""

    def score_all_items(self, users: Tensor) -> Tensor:
        """(B, I) scores against the whole catalogue."""

    def training_scalars(self) -> dict[str, Tensor]:
        """Scalars worth a TensorBoard curve (a learned temperature, say); {} for most models."""


@runtime_checkable
class PropensityScorer(Scorer, Protocol):
    """A scorer with a sigmoid head for P(convert | user, item), calibrated after training."""

    def logit_from_embeddings(
        self, user: Tensor, item: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """Raw head logit (B,) from aligned embeddings: what training's BCE sees."""

    def propensity_logit(
        self, users: Tensor, items: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """Raw head logit (B,) of aligned user and item indices."""

    def calibrate_logit(
        self, logit: Tensor, corrected: bool = True, calibrated: bool = True
    ) -> Tensor:
        """Probability from a raw logit: down-sampling correction, then the fitted calibration."""

    def propensity(self, users: Tensor, items: Tensor, context: Tensor | None = None) -> Tensor:
        """Calibrated P(convert | user, item) (B,)."""

    def set_keep_rate(self, keep_rate: float) -> None:
        """Record the keep rate of label-0 training rows, so predictions undo the down-sampling."""

    def set_calibration(
        self,
        a: float = 1.0,
        b: float = 0.0,
        iso_x: Tensor | None = None,
        iso_y: Tensor | None = None,
    ) -> None:
        """Install a fitted calibration (Platt a, b; optional isotonic knots)."""

    def calibration_state(self) -> dict[str, Tensor]:
        """The fitted calibration and keep rate as tensors, saved beside the checkpoint."""

    def propensity_module(self) -> nn.Module:
        """The serving module: `forward(user_idx, item_idx) -> probability (B,)`."""


def has_propensity_head(scorer: Scorer) -> bool:
    return isinstance(scorer, PropensityScorer)


@dataclass
class ScorerInputs:
    """What the data tell a scorer's constructor; every scorer class takes it in `from_inputs`."""

    num_users: int
    num_items: int
    user_features: FeatureTable = field(default_factory=FeatureTable)
    item_features: FeatureTable = field(default_factory=FeatureTable)
    user_counts: Tensor | None = None  # (U,) training interactions per user (0 = cold)
    item_counts: Tensor | None = None  # (I,) training interactions per item (0 = cold)

    @classmethod
    def from_data(cls, data: InteractionData) -> ScorerInputs:
        return cls(
            num_users=data.num_users,
            num_items=data.num_items,
            user_features=data.user_features,
            item_features=data.item_features,
            user_counts=torch.bincount(data.train.users, minlength=data.num_users),
            item_counts=torch.bincount(data.train.items, minlength=data.num_items),
        )

    def to_state(self) -> dict:
        """Plain tensors, ints and strings: loadable with `torch.load(weights_only=True)`."""

        def table(t: FeatureTable) -> dict:
            return {
                "categorical": dict(t.categorical),
                "multi_hot": dict(t.multi_hot),
                "numeric": dict(t.numeric),
                "cardinality": dict(t.cardinality),
            }

        return {
            "num_users": self.num_users,
            "num_items": self.num_items,
            "user_features": table(self.user_features),
            "item_features": table(self.item_features),
            "user_counts": self.user_counts,
            "item_counts": self.item_counts,
        }

    @classmethod
    def from_state(cls, state: dict) -> ScorerInputs:
        return cls(
            num_users=int(state["num_users"]),
            num_items=int(state["num_items"]),
            user_features=FeatureTable(**state["user_features"]),
            item_features=FeatureTable(**state["item_features"]),
            user_counts=state["user_counts"],
            item_counts=state["item_counts"],
        )

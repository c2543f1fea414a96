"""Two-tower retrieval model (Yi et al., 2019, "Sampling-bias-corrected neural modeling for large
corpus item recommendations"; Covington et al., 2016): a user tower and an item tower, each
id embedding + side features -> MLP -> `dim`, scored by a dot product.

On the scorer contract (`user_embedding`, `item_embedding`, `score`, `score_all_items`), so the same
LightningModule, metrics and exporter serve it and MF. The temperature is folded into the user
embedding (u / tau), so scores are the logits the loss trains and the item side stays a plain
(optionally unit-norm) vector for an inner-product index.

Cold start: rows with no training interactions (and, during training, a random `id_dropout` share of
rows) use a shared "unknown id" embedding, so their vector comes from their features alone.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.models.components.features import FeatureEncoder
from recsys.models.contracts import ScorerInputs

log = logging.getLogger(__name__)


class Tower(nn.Module):
    """One side: [id embedding | encoded features] -> MLP -> `dim`, optionally L2-normalised."""

    def __init__(
        self,
        num_rows: int,
        table,  # FeatureTable or None
        dim: int,
        id_dim: int,
        feature_dim: int,
        hidden: list[int],
        use_ids: bool,
        use_features: bool,
        id_dropout: float,
        dropout: float,
        normalize: bool,
        numeric_encoding: str,
        numeric_buckets: int,
        counts: Tensor | None,
        init_std: float,
        side: str,
        sparse: bool = False,
    ):
        super().__init__()
        has_features = table is not None and bool(table)
        if use_features and not has_features:
            log.warning(
                "two-tower: the data has no %s side features; the %s tower uses ids only",
                side,
                side,
            )
        self.use_features = use_features and has_features
        self.use_ids = use_ids or not self.use_features  # a tower needs at least one input
        if not use_ids and self.use_ids:
            log.warning("two-tower: %s tower has no features and use_ids=false; keeping ids", side)
        self.num_rows, self.id_dropout, self.normalize = num_rows, float(id_dropout), normalize
        # Row num_rows is the shared "unknown id": cold rows and dropped-out ids map to it.
        # sparse=True: row-sparse gradients, so a sparse optimizer updates only the batch's rows.
        self.id_table = nn.Embedding(num_rows + 1, id_dim if self.use_ids else 1, sparse=sparse)
        nn.init.normal_(self.id_table.weight, std=init_std)
        known = torch.ones(num_rows, dtype=torch.bool) if counts is None else counts.view(-1) > 0
        self.register_buffer("known", known)  # (N,) rows seen in training
        self.features = FeatureEncoder(
            table if self.use_features else _EmptyTable(),
            num_rows,
            feature_dim,
            numeric_encoding,
            numeric_buckets,
            init_std,
        )
        width = (id_dim if self.use_ids else 0) + self.features.out_dim
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, idx: Tensor) -> Tensor:
        parts: list[Tensor] = []
        if self.use_ids:
            parts.append(self.id_part(idx))  # (n, id_dim)
        if self.use_features:
            parts.append(self.features(idx))  # (n, features.out_dim)
        return self.head(torch.cat(parts, 1))

    def id_part(self, idx: Tensor) -> Tensor:
        """Id embeddings; unseen rows (and, in training, an `id_dropout` share) get the unknown row."""
        unknown = ~self.known[idx]
        if self.training and self.id_dropout > 0.0:
            unknown = unknown | (torch.rand(idx.shape, device=idx.device) < self.id_dropout)
        return self.id_table(torch.where(unknown, torch.full_like(idx, self.num_rows), idx))

    def head(self, x: Tensor) -> Tensor:
        """MLP to `dim`, then the optional L2 normalisation."""
        x = self.mlp(x)  # (n, dim)
        return F.normalize(x, dim=-1) if self.normalize else x


class _EmptyTable:
    """Stands in for a FeatureTable with nothing in it (id-only towers)."""

    categorical: dict = {}
    multi_hot: dict = {}
    numeric: dict = {}
    cardinality: dict = {}


class TwoTower(nn.Module):
    """User and item towers; score(u, i) = <user_tower(u), item_tower(i)> / temperature."""

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        user_features=None,  # FeatureTable: data.user_features
        item_features=None,  # FeatureTable: data.item_features
        user_counts: Tensor | None = None,  # (U,) training interactions per user (0 = cold)
        item_counts: Tensor | None = None,  # (I,) training interactions per item (0 = cold)
        id_dim: int = 32,
        feature_dim: int = 16,
        hidden: list[int] | tuple[int, ...] = (128,),
        use_ids: bool = True,
        use_features: bool = True,
        user_id_dropout: float = 0.0,
        item_id_dropout: float = 0.0,
        dropout: float = 0.0,
        normalize: bool = True,
        temperature: float = 0.05,
        learn_temperature: bool = True,
        min_temperature: float = 0.01,
        numeric_encoding: str = "both",
        numeric_buckets: int = 8,
        init_std: float = 0.1,
        sparse: bool = False,
    ):
        super().__init__()
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        common = dict(
            dim=dim,
            id_dim=id_dim,
            feature_dim=feature_dim,
            hidden=list(hidden),
            use_ids=use_ids,
            use_features=use_features,
            dropout=dropout,
            normalize=normalize,
            numeric_encoding=numeric_encoding,
            numeric_buckets=numeric_buckets,
            init_std=init_std,
            sparse=sparse,
        )
        self.user_tower = Tower(
            num_users,
            user_features,
            id_dropout=user_id_dropout,
            counts=user_counts,
            side="user",
            **common,
        )
        self.item_tower = Tower(
            num_items,
            item_features,
            id_dropout=item_id_dropout,
            counts=item_counts,
            side="item",
            **common,
        )
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        log_t = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        self.min_temperature = float(min_temperature)

    @classmethod
    def from_inputs(cls, inputs: ScorerInputs, **config) -> TwoTower:
        return cls(
            inputs.num_users,
            inputs.num_items,
            user_features=inputs.user_features,
            item_features=inputs.item_features,
            user_counts=inputs.user_counts,
            item_counts=inputs.item_counts,
            **config,
        )

    def training_scalars(self) -> dict[str, Tensor]:
        return {"temperature": self.temperature().detach().float()}

    @torch.jit.export
    def temperature(self) -> Tensor:
        """Scalar tensor; logged to TensorBoard as `train/temperature`."""
        return self.log_temperature.exp().clamp(min=self.min_temperature)

    @torch.jit.export
    def user_embedding(self, users: Tensor) -> Tensor:
        return self.user_tower(users) / self.temperature()  # (B, D)

    @torch.jit.export
    def item_embedding(self, items: Tensor) -> Tensor:
        return self.item_tower(items)  # (N, D)

    @torch.jit.export
    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """Pairwise scores (B,) for aligned user and item indices."""
        return (self.user_embedding(users) * self.item_embedding(items)).sum(-1)

    @torch.jit.export
    def score_all_items(self, users: Tensor) -> Tensor:
        """(B, I) scores against the whole catalogue."""
        items = torch.arange(self.num_items, device=users.device)
        return self.user_embedding(users) @ self.item_embedding(items).T

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return self.score(users, items)

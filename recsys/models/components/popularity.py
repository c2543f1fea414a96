"""Popularity baseline on the scorer contract: every user gets items ranked by training count.

Logged beside every run so a model's gain is always read against the simplest honest ranking.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PopularityScorer(nn.Module):
    def __init__(self, item_counts: Tensor, num_users: int = 0):
        super().__init__()
        self.num_users, self.num_items = num_users, int(item_counts.numel())
        self.register_buffer("counts", item_counts.float().view(-1, 1))  # (I, 1)

    def user_embedding(self, users: Tensor) -> Tensor:
        return torch.ones(users.numel(), 1, device=users.device)  # (B, 1)

    def item_embedding(self, items: Tensor) -> Tensor:
        return self.counts[items]  # (N, 1)

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        return self.counts[items, 0]

    def score_all_items(self, users: Tensor) -> Tensor:
        return self.counts.T.expand(users.numel(), -1)

    def training_scalars(self) -> dict[str, Tensor]:
        return {}

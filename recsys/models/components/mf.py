"""Matrix factorization scorer (Koren, Bell & Volinsky, 2009; trained with BPR, Rendle et al., 2009).

A pure `nn.Module` on the scorer contract: `user_embedding`, `item_embedding`, `score`,
`score_all_items`. The item bias rides along as an extra embedding dimension (user side = 1), so
ranking, retrieval and export stay a single dot product.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MatrixFactorization(nn.Module):
    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        item_bias: bool = True,
        init_std: float = 0.1,
        sparse: bool = False,
    ):
        super().__init__()
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        # sparse=True gives row-sparse gradients for SparseAdam: only touched rows are updated.
        self.user_table = nn.Embedding(num_users, dim, sparse=sparse)
        self.item_table = nn.Embedding(num_items, dim, sparse=sparse)
        self.item_bias = nn.Embedding(num_items, 1, sparse=sparse) if item_bias else None
        nn.init.normal_(self.user_table.weight, std=init_std)
        nn.init.normal_(self.item_table.weight, std=init_std)
        if self.item_bias is not None:
            nn.init.zeros_(self.item_bias.weight)

    def user_embedding(self, users: Tensor) -> Tensor:
        u = self.user_table(users)  # (B, D)
        if self.item_bias is None:
            return u
        return torch.cat([u, torch.ones_like(u[:, :1])], dim=1)  # (B, D + 1)

    def item_embedding(self, items: Tensor) -> Tensor:
        v = self.item_table(items)  # (N, D)
        if self.item_bias is None:
            return v
        return torch.cat([v, self.item_bias(items)], dim=1)  # (N, D + 1)

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """Pairwise scores (B,) for aligned user and item indices."""
        return (self.user_embedding(users) * self.item_embedding(items)).sum(-1)

    def score_all_items(self, users: Tensor) -> Tensor:
        """(B, I) scores against the whole catalogue."""
        items = torch.arange(self.num_items, device=users.device)
        return self.user_embedding(users) @ self.item_embedding(items).T

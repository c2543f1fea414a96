"""Matrix factorization scorer (Koren, Bell & Volinsky, 2009; trained with BPR, Rendle et al., 2009).

A pure `nn.Module` on the scorer contract: `user_embedding`, `item_embedding`, `score`,
`score_all_items`. The item bias is the last column of the item table (the user side is a constant
1), so ranking, retrieval and export stay a single dot product, and a batch costs one item lookup
and one optimizer update, not two.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recsys.models.contracts import ScorerInputs


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
        self.has_item_bias = item_bias
        # sparse=True gives row-sparse gradients for SparseAdam: only touched rows are updated.
        self.user_table = nn.Embedding(num_users, dim, sparse=sparse)
        self.item_table = nn.Embedding(num_items, dim + int(item_bias), sparse=sparse)
        nn.init.normal_(self.user_table.weight, std=init_std)
        nn.init.normal_(self.item_table.weight[:, :dim], std=init_std)
        nn.init.zeros_(self.item_table.weight[:, dim:])  # the bias column, if any

    @classmethod
    def from_inputs(cls, inputs: ScorerInputs, **config) -> MatrixFactorization:
        return cls(inputs.num_users, inputs.num_items, **config)

    def training_scalars(self) -> dict[str, Tensor]:
        return {}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints written before the bias moved into the item table kept it as `item_bias`."""
        bias = state_dict.pop(prefix + "item_bias.weight", None)
        if bias is not None and prefix + "item_table.weight" in state_dict:
            table = state_dict[prefix + "item_table.weight"]
            state_dict[prefix + "item_table.weight"] = torch.cat([table, bias], 1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def user_embedding(self, users: Tensor) -> Tensor:
        u = self.user_table(users)  # (B, D)
        if not self.has_item_bias:
            return u
        return torch.cat([u, torch.ones_like(u[:, :1])], dim=1)  # (B, D + 1)

    def item_embedding(self, items: Tensor) -> Tensor:
        return self.item_table(items)  # (N, D [+ 1 bias])

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """Pairwise scores (B,) for aligned user and item indices."""
        return (self.user_embedding(users) * self.item_embedding(items)).sum(-1)

    def score_all_items(self, users: Tensor) -> Tensor:
        """(B, I) scores against the whole catalogue."""
        items = torch.arange(self.num_items, device=users.device)
        return self.user_embedding(users) @ self.item_embedding(items).T

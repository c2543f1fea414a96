"""A customer's features -> one number (a churn / purchase logit, or an expected value).

Wide and deep: a linear path over the numeric features (the logistic regression an analyst would
fit) plus an MLP over numeric features and embedded side features. On small customer bases the
linear path carries the signal and the MLP adds interactions only where the data support them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CustomerNet(nn.Module):
    def __init__(
        self,
        num_numeric: int,
        cardinalities: list[int],
        embedding_dim: int = 8,
        hidden: tuple[int, ...] = (64, 32),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_dim) for n in cardinalities)
        width = num_numeric + embedding_dim * len(cardinalities)
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.deep = nn.Sequential(*layers)
        self.wide = nn.Linear(num_numeric, 1, bias=False)

    def forward(self, numeric: Tensor, categorical: Tensor) -> Tensor:
        parts = [numeric] + [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        return (self.deep(torch.cat(parts, dim=1)) + self.wide(numeric)).squeeze(1)

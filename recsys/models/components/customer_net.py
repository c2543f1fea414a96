"""A customer's features -> one number (a churn / purchase logit, or an expected value).

Wide and deep: a linear path over the numeric features (the logistic regression an analyst would
fit) (numeric features and one weight per side-feature category) plus an MLP over numeric
features and embedded side features. On small customer bases the
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
        # One scalar per category: the one-hot terms of the analyst's regression.
        self.wide_categories = nn.ModuleList(nn.Embedding(n, 1) for n in cardinalities)
        for table in self.wide_categories:
            nn.init.zeros_(table.weight)

    @torch.no_grad()
    def start_from_linear(self, coef: Tensor, intercept: float, freeze: bool = True) -> None:
        """Start as a fitted linear model (coefficients over [numeric, one-hot per side feature]):
        the wide path takes its weights, the deep path's output layer starts at zero, so the network
        begins exactly at the regression and learns only a correction to it (the Combined
        Actuarial Neural Network of Wuethrich & Merz, 2019). `freeze` keeps the linear part fixed."""
        numeric = self.wide.in_features
        self.wide.weight.copy_(coef[:numeric].view(1, -1))
        offset = numeric
        for table in self.wide_categories:
            n = table.num_embeddings
            table.weight.copy_(coef[offset : offset + n].view(-1, 1))
            offset += n
        last = self.deep[-1]
        last.weight.zero_()
        last.bias.fill_(intercept)
        for p in [*self.wide.parameters(), *self.wide_categories.parameters()]:
            p.requires_grad_(not freeze)

    def forward(self, numeric: Tensor, categorical: Tensor) -> Tensor:
        parts = [numeric] + [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        wide = self.wide(numeric)
        for i, table in enumerate(self.wide_categories):
            wide = wide + table(categorical[:, i])
        return (self.deep(torch.cat(parts, dim=1)) + wide).squeeze(1)

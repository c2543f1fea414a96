"""The tutorial-style loop for a two-tower model as tutorials write it: the `Dataset` looks up each
example's side features (from arrays, one row per `__getitem__`) and the default `DataLoader`
collates them; the towers then encode the collated rows.

The towers, loss and optimizer are recsys's own (`Tower.id_part`, `FeatureEncoder.encode`,
`Tower.head`), so the arithmetic is the same as recsys's step and only the input pipeline differs.
`check_same_embeddings` asserts that on a batch.
"""

from __future__ import annotations

import random

import torch
from torch.utils.data import DataLoader, Dataset


class FeatureTripletDataset(Dataset):
    """(user, item, negatives, user feature rows, item feature rows) per example."""

    def __init__(self, users, items, num_items: int, num_negatives: int, scorer):
        self.users, self.items = users.tolist(), items.tolist()
        self.num_items, self.num_negatives = num_items, num_negatives
        self.user_rows = [
            t.numpy() for t in scorer.user_tower.features.rows(torch.arange(scorer.num_users))
        ]
        self.item_rows = [t.numpy() for t in scorer.item_tower.features.rows(torch.arange(scorer.num_items))]  # fmt: skip

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, i: int):
        u, v = self.users[i], self.items[i]
        negatives = [random.randrange(self.num_items) for _ in range(self.num_negatives)]
        return (u, v, torch.tensor(negatives), tuple(a[u] for a in self.user_rows),
                tuple(a[v] for a in self.item_rows))  # fmt: skip


def embed(tower, idx: torch.Tensor, rows) -> torch.Tensor:
    parts = [tower.id_part(idx)] if tower.use_ids else []
    if tower.use_features:
        parts.append(tower.features.encode(*rows))
    return tower.head(torch.cat(parts, 1))


def check_same_embeddings(scorer, loader) -> None:
    """The collated-feature path gives the scorer's own embeddings (eval mode: no dropout)."""
    users, items, _, user_rows, item_rows = next(iter(loader))
    scorer.eval()
    with torch.no_grad():
        mine = embed(scorer.user_tower, users, user_rows) / scorer.temperature()
        torch.testing.assert_close(mine, scorer.user_embedding(users))
        torch.testing.assert_close(embed(scorer.item_tower, items, item_rows), scorer.item_embedding(items))  # fmt: skip
    scorer.train()


def feature_tutorial_epoch_fn(scorer, loss_fn, optimizer, data, batch_size: int, l2: float):
    """One epoch of the feature-fetching tutorial loop (in-batch softmax: negatives unused)."""
    loader = DataLoader(
        FeatureTripletDataset(data.train.users, data.train.items, data.num_items, 1, scorer),
        batch_size=batch_size,
        shuffle=True,
    )
    check_same_embeddings(scorer, loader)

    def run_epoch():
        for users, items, _, user_rows, item_rows in loader:
            user = embed(scorer.user_tower, users, user_rows) / scorer.temperature()
            item = embed(scorer.item_tower, items, item_rows)
            none = items[:, None][:, :0]
            loss = loss_fn(user, item, item[:, None, :][:, :0], items, none)
            if l2 > 0:
                loss = loss + l2 * (user.pow(2).sum() + item.pow(2).sum()) / users.numel()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run_epoch, len(loader.dataset)

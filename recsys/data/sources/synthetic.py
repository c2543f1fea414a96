"""Built-in synthetic data: a latent-factor world with known structure, generated in-process from a seed.

Users belong to `num_groups` taste groups (so segmentation has a ground truth); items have latent
factors and a Zipf popularity skew; each user picks items by a Gumbel top-k draw from
softmax(affinity / temperature + popularity). Side features are noisy views of the latent
structure, and every interaction is an exposure with a known true conversion probability.
No download: `python scripts/train.py` runs anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recsys.data.ingest.report import DataReport
from recsys.data.ingest.splits import random_split
from recsys.data.interactions import FeatureTable, InteractionData, Interactions


@dataclass
class SyntheticSource:
    num_users: int = 3000
    num_items: int = 1500
    num_groups: int = 6  # true user taste groups
    latent_dim: int = 16
    mean_interactions: float = 40.0  # per user, log-normally spread
    popularity_skew: float = 1.0  # Zipf exponent of item popularity
    temperature: float = 0.5  # lower = choices follow tastes more sharply
    num_categories: int = 8  # item category vocabulary (a noisy view of item factors)
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0

    def _report(self, rows: int, groups, train, valid, test) -> dict:
        report = DataReport("synthetic", seed=self.seed, rows_generated=rows)
        report.info["true_user_groups"] = groups.tolist()  # ground truth for segmentation
        report.read("generated", "in memory (no file)", rows)
        report.note(
            "split", "generated", method="random", train=len(train), valid=len(valid),
            test=len(test), valid_fraction=self.valid_fraction, test_fraction=self.test_fraction,
        )  # fmt: skip
        return report.finish({"train": len(train), "valid": len(valid), "test": len(test)})

    def __call__(self) -> InteractionData:
        g = torch.Generator().manual_seed(self.seed)
        d = self.latent_dim
        centers = torch.randn(self.num_groups, d, generator=g) * 1.5
        groups = torch.randint(self.num_groups, (self.num_users,), generator=g)
        users = centers[groups] + 0.5 * torch.randn(self.num_users, d, generator=g)
        items = torch.randn(self.num_items, d, generator=g)
        rank = torch.randperm(self.num_items, generator=g).double() + 1
        popularity = (-self.popularity_skew * torch.log(rank)).float()  # log Zipf weight
        affinity = users @ items.T / d**0.5  # (U, I)
        logits = affinity / self.temperature + popularity

        counts = torch.exp(
            np.log(self.mean_interactions) + 0.5 * torch.randn(self.num_users, generator=g)
        )
        counts = counts.round().clamp(5, self.num_items // 4).long()
        gumbel = -torch.log(
            -torch.log(torch.rand(logits.shape, generator=g).clamp(1e-12, 1 - 1e-7))
        )
        order = torch.argsort(logits + gumbel, dim=1, descending=True)
        take = (
            torch.arange(self.num_items)[None, :] < counts[:, None]
        )  # first n_u picks of each user
        user_idx = torch.arange(self.num_users)[:, None].expand_as(order)[take]
        item_idx = order[take]

        # Exposure -> conversion with a known probability: stronger affinity converts more often.
        a = affinity[user_idx, item_idx]
        true_p = torch.sigmoid(-1.0 + 1.5 * (a - a.mean()) / a.std())
        labels = torch.bernoulli(true_p, generator=g)
        timestamps = 1_600_000_000 + torch.randint(0, 86400 * 365, (len(user_idx),), generator=g)
        log = Interactions(user_idx, item_idx, timestamps, None, labels, true_p)
        train, valid, test = random_split(log, self.valid_fraction, self.test_fraction, self.seed)

        user_features = FeatureTable(
            categorical={
                # 0 is "unknown"; a noisy view of the taste group, and an unrelated field.
                "segment_hint": torch.where(
                    torch.rand(self.num_users, generator=g) < 0.7,
                    groups,
                    torch.randint(self.num_groups, (self.num_users,), generator=g),
                )
                + 1,
                "region": torch.randint(1, 6, (self.num_users,), generator=g),
            },
            numeric={"age": (torch.randn(self.num_users, generator=g))},
            cardinality={"segment_hint": self.num_groups + 1, "region": 6},
        )
        category = items[:, : self.num_categories].argmax(1) + 1
        tags = (items[:, self.num_categories : self.num_categories + 6] > 0.8).float()
        item_features = FeatureTable(
            categorical={"category": category},
            multi_hot={"tags": tags},
            numeric={"price": (items[:, -1] + 0.3 * torch.randn(self.num_items, generator=g))},
            cardinality={"category": self.num_categories + 1, "tags": tags.shape[1]},
        )
        return InteractionData(
            train=train,
            valid=valid,
            test=test,
            user_ids=np.array([f"u{i:06d}" for i in range(self.num_users)]),
            item_ids=np.array([f"i{i:06d}" for i in range(self.num_items)]),
            user_features=user_features,
            item_features=item_features,
            report=self._report(len(log), groups, train, valid, test),
            name="synthetic",
        )

"""Ranking of cold items (never seen in training) for the users who interacted with them.

Two views, both written to metrics.json:
- `test_cold/...`: the full catalogue is ranked (training and validation items masked, as at test
  time); a hit is one of the user's cold items. Cold items compete with every warm item.
- `test_cold_only/...`: only the cold items are ranked. `random/test_cold_only/recall@K` (and
  `random/test_cold/recall@K`) is the expected recall of a uniformly random ranking, K / candidates.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from recsys.csr import UserItemCSR
from recsys.data.datamodule import InteractionDataModule
from recsys.data.loaders import RankingBatches
from recsys.data.sources.cold_start import ColdStartData
from recsys.metrics.evaluate import evaluate_ranking
from recsys.models.contracts import Scorer
from recsys.models.retrieval import RetrievalModule
from recsys.reports.run_report import RunReport


class CandidateSubset(nn.Module):
    """A scorer restricted to `items`: item j of this scorer is item `items[j]` of the wrapped one."""

    def __init__(self, scorer: Scorer, items: Tensor):
        super().__init__()
        self.scorer, self.num_items = scorer, int(items.numel())
        self.num_users = scorer.num_users
        self.register_buffer("items", items)

    def user_embedding(self, users: Tensor) -> Tensor:
        return self.scorer.user_embedding(users)

    def item_embedding(self, items: Tensor) -> Tensor:
        return self.scorer.item_embedding(self.items[items])

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        return self.scorer.score(users, self.items[items])

    def score_all_items(self, users: Tensor) -> Tensor:
        return self.scorer.score_all_items(users)[:, self.items]  # (B, C)

    def training_scalars(self) -> dict[str, Tensor]:
        return {}


def random_recall(candidates: Tensor, ks: list[int]) -> dict[str, float]:
    """Mean expected Recall@K of a random ranking, per user min(K, candidates) / candidates."""
    c = candidates.double().clamp(min=1)
    return {f"recall@{k}": float((c.clamp(max=k) / c).mean()) for k in ks}


class ColdStartReport(RunReport):
    """`test_cold/...` and `test_cold_only/...` where the data hold cold items; nothing otherwise."""

    def report(
        self, trainer: pl.Trainer, module: RetrievalModule, datamodule: InteractionDataModule
    ) -> dict[str, float]:
        return cold_start_metrics(datamodule, module.scorer, module.ks)


def cold_start_metrics(
    datamodule: InteractionDataModule, scorer: Scorer, ks: list[int]
) -> dict[str, float]:
    data = datamodule.load()
    if not isinstance(data, ColdStartData) or data.cold_test is None or not len(data.cold_test):
        return {}
    device = next(iter(scorer.parameters()), torch.zeros(0)).device
    cold = data.cold_test
    seen = UserItemCSR.from_pairs(
        torch.cat([data.train.users, data.valid.users]),
        torch.cat([data.train.items, data.valid.items]),
        data.num_users,
    )
    targets = UserItemCSR.from_pairs(cold.users, cold.items, data.num_users)
    users = torch.nonzero(targets.row_lengths() > 0).view(-1)
    chunk = max(1, datamodule.eval_chunk_elements // max(1, data.num_items))
    out: dict[str, float] = {}

    batches = RankingBatches(users, seen, targets, chunk).to(device)
    whole, _ = evaluate_ranking(scorer, batches, ks, data.num_items)
    out.update({f"test_cold/{k}": v for k, v in whole.items()})
    candidates = data.num_items - seen.row_lengths(users)
    out.update({f"random/test_cold/{k}": v for k, v in random_recall(candidates, ks).items()})

    # Among cold items only: positions 0..C-1 in `cold_items`; none of them is ever seen.
    position = torch.full((data.num_items,), -1, dtype=torch.int64)
    position[data.cold_items] = torch.arange(data.cold_items.numel())
    n_cold = data.cold_items.numel()
    empty = torch.zeros(0, dtype=torch.int64)
    only = RankingBatches(
        users,
        UserItemCSR.from_pairs(empty, empty, data.num_users),
        UserItemCSR.from_pairs(cold.users, position[cold.items], data.num_users),
        chunk,
    ).to(device)
    subset = CandidateSubset(scorer, data.cold_items.to(device))
    among, _ = evaluate_ranking(subset, only, ks, n_cold)
    out.update({f"test_cold_only/{k}": v for k, v in among.items()})
    full = torch.full((users.numel(),), n_cold)
    out.update({f"random/test_cold_only/{k}": v for k, v in random_recall(full, ks).items()})
    out["test_cold/users"] = float(users.numel())
    out["test_cold/items"] = float(n_cold)
    return out

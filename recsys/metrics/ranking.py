"""Full-ranking metrics over the whole catalogue, on tensors, one chunk of users at a time.

Conventions (README, "Results": the protocol):
- every item is ranked; the user's seen items (training, and validation at test time) are masked;
- ties are broken by the lower item index, on every device (see `topk_items`);
- Recall@K = hits in top-K / number of the user's test items;
- NDCG@K with binary gains, ideal DCG over min(K, number of test items);
- HR@K = 1 if any hit; MRR@K = 1 / rank of the first hit (0 if none); Precision@K = hits / K;
- means are over users with at least one test item; coverage@K = distinct items recommended / items.
"""

from __future__ import annotations

import torch
from torch import Tensor

METRIC_NAMES = ("recall", "ndcg", "hr", "mrr", "precision")


def _sortable_keys(scores: Tensor, items: Tensor | None = None) -> Tensor:
    """int64 keys whose order is (score desc, item index asc), so a top-k on them breaks ties by index.

    The float's bit pattern is mapped to a monotone integer (-0.0 and +0.0 both to 0, so equal
    scores tie) and placed above the inverted item index. `items` gives each column's item index
    (default: the column number).
    """
    bits = scores.float().contiguous().view(torch.int32).to(torch.int64)
    ordered = torch.where(bits < 0, -(bits & 0x7FFFFFFF), bits)  # monotone in the float value
    if items is None:
        items = torch.arange(scores.shape[-1], device=scores.device, dtype=torch.int64)
    return ordered * (1 << 32) + (0xFFFFFFFF - items)


def topk_items(
    scores: Tensor, k: int, exclude: tuple[Tensor, Tensor] | None = None, inplace: bool = False
) -> Tensor:
    """Top-k item indices per row of `scores` (B, I), `exclude` = (row, item) coordinates masked.

    Exact and device-independent: ties are broken by the lower item index. torch.topk leaves the
    order of equal scores unspecified, so a plain float top-(k+1) runs first: a row whose (k+1)-th
    score equals its k-th has ties straddling the k-th place, and only those rows are re-ranked on
    exact integer keys; the k winners of every row are then ordered by (score desc, index asc).
    Full-width work is one top-k. `inplace=True` lets the mask write into `scores` (the caller's
    fresh tensor) instead of a copy.
    """
    scores = scores.float()
    if exclude is not None:
        if not inplace:
            scores = scores.clone()
        scores[exclude[0], exclude[1]] = float("-inf")
    k = min(k, scores.shape[1])
    values, idx = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)  # ties: any order
    if values.shape[1] > k:
        straddle = values[:, k] == values[:, k - 1]  # more candidates tie for the last place
        values, idx = values[:, :k], idx[:, :k]
        if bool(straddle.any()):
            rows = straddle.nonzero().view(-1)
            _, idx_rows = torch.topk(_sortable_keys(scores[rows]), k, dim=1)
            idx[rows] = idx_rows
            values[rows] = scores[rows].gather(1, idx_rows)
    order = torch.argsort(_sortable_keys(values, idx), dim=1, descending=True)
    return idx.gather(1, order)  # (B, k)


def hits_matrix(topk: Tensor, targets: tuple[Tensor, Tensor], num_items: int) -> Tensor:
    """(B, k) bool: is the item at each rank one of the user's test items."""
    relevant = torch.zeros(topk.shape[0], num_items, dtype=torch.bool, device=topk.device)
    relevant[targets[0], targets[1]] = True
    return relevant.gather(1, topk)


def per_user_metrics(hits: Tensor, num_targets: Tensor, ks: list[int]) -> dict[str, Tensor]:
    """Per-user metric values (B,) for each `name@k`, from the (B, max k) hit matrix."""
    hits = hits.float()
    n_rel = num_targets.float().clamp(min=1)
    ranks = torch.arange(1, hits.shape[1] + 1, device=hits.device, dtype=torch.float32)
    discounts = 1.0 / torch.log2(ranks + 1.0)  # (K,)
    ideal_cum = torch.cumsum(discounts, 0)  # ideal DCG for 1..K relevant items
    first_hit = torch.where(
        hits.any(1), hits.argmax(1).float() + 1.0, torch.full_like(n_rel, float("inf"))
    )
    out: dict[str, Tensor] = {}
    for k in ks:
        kk = min(k, hits.shape[1])
        h = hits[:, :kk]
        n_hits = h.sum(1)
        ideal = ideal_cum[(num_targets.clamp(min=1, max=kk) - 1).long()]
        out[f"recall@{k}"] = n_hits / n_rel
        out[f"ndcg@{k}"] = (h * discounts[:kk]).sum(1) / ideal
        out[f"hr@{k}"] = (n_hits > 0).float()
        out[f"mrr@{k}"] = torch.where(first_hit <= kk, 1.0 / first_hit, torch.zeros_like(n_rel))
        out[f"precision@{k}"] = n_hits / k
    return out


class RankingAccumulator:
    """Sums per-user metrics and recommended-item sets over chunks; `compute` gives the means."""

    def __init__(self, ks: list[int], num_items: int, keep_per_user: bool = False):
        self.ks, self.num_items, self.keep_per_user = list(ks), num_items, keep_per_user
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.recommended: dict[int, Tensor] = {}
        self.per_user: list[tuple[Tensor, dict[str, Tensor]]] = []

    def update(
        self, users: Tensor, topk: Tensor, targets: tuple[Tensor, Tensor], num_targets: Tensor
    ) -> None:
        values = per_user_metrics(hits_matrix(topk, targets, self.num_items), num_targets, self.ks)
        for name, v in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + v.double().sum()
        self.count += int(users.numel())
        for k in self.ks:
            seen = self.recommended.setdefault(
                k, torch.zeros(self.num_items, dtype=torch.bool, device=topk.device)
            )
            seen[topk[:, :k].reshape(-1)] = True
        if self.keep_per_user:
            self.per_user.append((users.cpu(), {n: v.cpu() for n, v in values.items()}))

    def compute(self) -> dict[str, float]:
        out = {name: float(s) / max(1, self.count) for name, s in self.sums.items()}
        for k, seen in self.recommended.items():
            out[f"coverage@{k}"] = float(seen.sum()) / self.num_items
        return out

    def per_user_table(self) -> dict[str, Tensor]:
        """Concatenated per-user values: {'user_idx': (U,), 'ndcg@10': (U,), ...}."""
        if not self.per_user:
            return {}
        table = {"user_idx": torch.cat([u for u, _ in self.per_user])}
        for name in self.per_user[0][1]:
            table[name] = torch.cat([vals[name] for _, vals in self.per_user])
        return table

"""Top-k and seen-item masking that TorchScript and torch.export both compile.

The ordering is the evaluation convention (`recsys.metrics.ranking.topk_items`): score descending,
ties broken by the lower item index, -0.0 equal to +0.0. The evaluation code packs float bits into
int64 keys, which TorchScript cannot express (it has no dtype view), so here the same order is
reached with a float top-k plus an exact repair of ties at the k-th score. NaN scores are not
handled (the exporter refuses non-finite embeddings, so dot products over them are finite).
"""

from __future__ import annotations

from typing import Tuple  # noqa: UP035  (TorchScript needs typing.Tuple on Python 3.10)

import torch
from torch import Tensor


def _order_selection(top: Tensor, idx: Tensor) -> Tuple[Tensor, Tensor]:  # noqa: UP006
    """Sort a (B, k) selection by score descending, ties by index ascending (two stable sorts)."""
    idx, perm = torch.sort(idx, dim=1)
    top, order = torch.sort(top.gather(1, perm), dim=1, descending=True, stable=True)
    return top, idx.gather(1, order)


def _exact_topk(scores: Tensor, k: int, tie_rank: Tensor) -> Tuple[Tensor, Tensor]:  # noqa: UP006
    kth = torch.topk(scores, k, dim=1).values[:, k - 1 :]  # (B, 1): the k-th largest score
    # Everything above the k-th score is in; among scores equal to it, the lowest indices are.
    # At most k - 1 items are strictly above, so the key below selects exactly the right set.
    above = torch.full_like(tie_rank, tie_rank.numel())  # (I,) larger than any tie rank
    key = torch.where(
        scores > kth, above, torch.where(scores == kth, tie_rank, torch.full_like(tie_rank, -1))
    )  # (B, I) int32
    idx = torch.topk(key, k, dim=1).indices  # (B, k), unordered within the selection
    return _order_selection(scores.gather(1, idx), idx)


def topk_lowest_index_ties(
    scores: Tensor, k: int, tie_rank: Tensor, branch: bool = True
) -> Tuple[Tensor, Tensor]:  # noqa: UP006
    """Top-k (scores, item indices), each (B, k), of a float32 (B, I) score matrix.

    `tie_rank` is the (I,) int32 buffer `I - 1 - arange(I)`: larger for lower indices. With `branch`, one float
    top-(k+1) decides: when no row ties at the k-th place, its top k is the answer and only
    needs ordering; otherwise (and always without `branch`: torch.export cannot branch on data)
    the exact path repairs the ties.
    """
    if branch and k < scores.shape[1]:
        top, idx = torch.topk(scores, k + 1, dim=1)
        if not bool((top[:, k - 1] == top[:, k]).any()):
            return _order_selection(top[:, :k], idx[:, :k])
    return _exact_topk(scores, k, tie_rank)


def mask_seen_(scores: Tensor, users: Tensor, indptr: Tensor, indices: Tensor) -> Tensor:
    """Set scores[b, item] = -inf for every item in row users[b] of the CSR (indptr, indices).

    Vectorised over the batch: one repeat_interleave per call, no Python loop per user.
    """
    starts = indptr[users]  # (B,)
    lengths = indptr[users + 1] - starts  # (B,)
    rows = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), lengths)
    ends = torch.cumsum(lengths, 0)
    offsets = torch.arange(rows.numel(), device=users.device) - torch.repeat_interleave(
        ends - lengths, lengths
    )
    items = indices[torch.repeat_interleave(starts, lengths) + offsets]
    scores.index_put_((rows, items), torch.tensor(float("-inf"), device=scores.device))
    return scores


def tie_rank_buffer(num_items: int) -> Tensor:
    """(I,) int32 `I - 1 - index`: the tie-break key `topk_lowest_index_ties` needs."""
    if num_items >= 2**31 - 1:
        raise ValueError(f"{num_items} items: int32 tie ranks hold at most 2**31 - 2")
    return torch.arange(num_items - 1, -1, -1, dtype=torch.int32)

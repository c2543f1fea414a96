"""The candidates of an in-batch softmax: this rank's batch, or the global batch of all DDP ranks.

Under DDP each rank holds B rows, and an in-batch softmax (recsys/models/losses.py) scores them
against that batch's items only: B - 1 negatives per row, however many ranks there are. With
`cross_rank` every rank instead gathers the item embeddings (with their gradient) and item ids of
all ranks, so each row sees the B x world_size items of the global batch: the "cross-batch
negatives" of RocketQA (Qu et al., 2021) and of CLIP's contrastive loss (Radford et al., 2021).

Gradients: the gathered candidates are used by every rank's loss, so the backward all-reduces
(sums) their gradient and each rank keeps the slice of its own rows. DDP then averages parameter
gradients over ranks, and each rank's loss is its rows' mean scaled by world_size x B_rank /
B_global (1 when ranks hold equal batches): the result is the gradient of the mean over the
global batch's rows, the one a single process would get on the concatenated batch
(tests/test_cross_rank.py checks it in 2 processes). The all-reduce moves B_global x D floats
(gloo has no reduce-scatter); DDP's own gradient all-reduce of the tables is far larger.

Ranks may hold different batch sizes (a short last batch, uneven shards): sizes are exchanged
first and the rows padded to the largest, one small collective per step (a host sync on a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


def distributed() -> bool:
    """True inside an initialised process group (any world size, 1 included)."""
    return dist.is_available() and dist.is_initialized()


def _all_gather_padded(x: Tensor, sizes: list[int]) -> Tensor:
    """Every rank's first dimension concatenated in rank order (sum(sizes), ...), without gradient."""
    longest = max(sizes)
    padded = x.new_zeros((longest, *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


class _GatherRows(torch.autograd.Function):
    """All-gather forward; backward sums the gradient over ranks and keeps this rank's rows."""

    @staticmethod
    def forward(ctx, x: Tensor, sizes: list[int], rank: int) -> Tensor:
        ctx.start, ctx.size = sum(sizes[:rank]), sizes[rank]
        return _all_gather_padded(x, sizes)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()  # all_reduce writes in place
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.start + ctx.size], None, None


@dataclass
class CandidateBatch:
    """The candidates of every row of this rank, and how its rows sit among them.

    candidates (C, D) and cand_items (C,): all positives (in rank order), then all mixed
    negatives. offset: column of this rank's first row's target. rows, mixed: positives and
    mixed negatives among the candidates (the number of candidates drawn per step, for logQ).
    weight: multiplies this rank's mean row loss so that DDP's average is the global row mean.
    """

    candidates: Tensor
    cand_items: Tensor
    offset: int
    rows: int
    mixed: int
    weight: float


def candidate_batch(
    positive: Tensor, negatives: Tensor, pos_items: Tensor, neg_items: Tensor, across_ranks: bool
) -> CandidateBatch:
    """This rank's candidates: positive (B, D) and mixed negatives (M, D), ids (B,) and (M,).

    across_ranks: gather them from every rank of the process group (see the module docstring).
    """
    b, m = pos_items.numel(), neg_items.numel()
    if not across_ranks:
        candidates, cand_items = positive, pos_items  # no copy without mixed negatives
        if m > 0:
            candidates = torch.cat([positive, negatives])  # (B + M, D)
            cand_items = torch.cat([pos_items, neg_items])  # (B + M,)
        return CandidateBatch(candidates, cand_items, 0, b, m, 1.0)
    rank, world = dist.get_rank(), dist.get_world_size()
    local = torch.tensor([b, m], device=positive.device)
    shapes = _all_gather_padded(local[None], [1] * world).tolist()  # [[B_r, M_r], ...]
    rows, mixed = [r for r, _ in shapes], [n for _, n in shapes]
    totals = [r + n for r, n in shapes]
    embeddings = _GatherRows.apply(torch.cat([positive, negatives]), totals, rank)  # (sum, D)
    ids = _all_gather_padded(torch.cat([pos_items, neg_items]), totals)  # (sum,)

    def positives_then_negatives(x: Tensor) -> Tensor:
        """Rank-ordered [pos_0, neg_0, pos_1, ...] -> [pos_0, pos_1, ..., neg_0, neg_1, ...]."""
        parts = [p.split([r, n]) for p, r, n in zip(x.split(totals), rows, mixed, strict=True)]
        return torch.cat([p for p, _ in parts] + [n for _, n in parts])

    global_rows = sum(rows)
    return CandidateBatch(
        positives_then_negatives(embeddings),
        positives_then_negatives(ids),
        offset=sum(rows[:rank]),
        rows=global_rows,
        mixed=sum(mixed),
        weight=world * b / global_rows,
    )

"""Small serving modules built from a trained scorer: what `retriever.pt`, `user_encoder.pt`,
`item_encoder.pt` and `propensity.pt` hold.

They rely only on the scorer contract (`num_users`, `num_items`, `user_embedding`,
`item_embedding`) and, for propensity, on a module `forward(user_idx, item_idx) -> P(convert)`,
so every model recsys trains exports the same way. Inputs are validated inside the modules, since
the serving side has no recsys to do it: a bad index is a clear error, never an out-of-bounds read.

Each module has two validation styles, chosen at build time (`pt2`): TorchScript raises
`ValueError` after reading the min/max (TorchScript surfaces it as `torch.jit.Error`); torch.export
cannot branch on data, so the pt2 modules use `torch._assert_async`, which raises a `RuntimeError`
with the same message on CPU (on CUDA it is a device-side assert).
"""

from __future__ import annotations

from typing import Tuple  # noqa: UP035  (TorchScript needs typing.Tuple on Python 3.10)

import torch
from torch import Tensor, nn

from recsys.serving.topk import mask_seen_, tie_rank_buffer, topk_lowest_index_ties


def check_indices(idx: Tensor, size: int, name: str, pt2: bool) -> None:
    """Every entry of the 1-D int64 tensor `idx` must lie in [0, size)."""
    if pt2:
        # dtype and rank are fixed by torch.export's input guards; the range is checked here.
        torch._assert_async(idx.min() >= 0, name + " holds a negative index")
        torch._assert_async(
            idx.max() < size, name + " holds an index >= " + str(size) + " (out of range)"
        )
        return
    if idx.dtype != torch.int64:
        raise ValueError(name + " must be an int64 (torch.long) tensor")
    if idx.dim() != 1:
        raise ValueError(name + " must be 1-D (a batch of indices), got " + str(idx.dim()) + "-D")
    if idx.numel() > 0:
        low, high = int(idx.min()), int(idx.max())
        if low < 0:
            raise ValueError(name + " holds a negative index (" + str(low) + ")")
        if high >= size:
            raise ValueError(
                name + " holds index " + str(high) + ", out of range [0, " + str(size) + ")"
            )


class Retriever(nn.Module):
    """forward(user_idx int64[B], k) -> (scores float32[B, k], item_idx int64[B, k]).

    Scores are dot products against precomputed item vectors; each user's seen items (a CSR in
    buffers) score -inf, so they come last and only appear when k exceeds what is left unseen.
    Order: score descending, ties to the lower item index (the evaluation convention).
    """

    def __init__(
        self,
        user_vectors: Tensor,
        item_vectors: Tensor,
        seen_indptr: Tensor,
        seen_indices: Tensor,
        pt2: bool = False,
    ):
        super().__init__()
        self.num_users, self.num_items = int(user_vectors.shape[0]), int(item_vectors.shape[0])
        self.pt2 = pt2
        self.register_buffer("user_vectors", user_vectors.float().contiguous())  # (U, D)
        self.register_buffer("item_vectors", item_vectors.float().contiguous())  # (I, D)
        self.register_buffer("seen_indptr", seen_indptr.long().contiguous())  # (U + 1,)
        self.register_buffer("seen_indices", seen_indices.long().contiguous())  # (nnz,)
        self.register_buffer("tie_rank", tie_rank_buffer(self.num_items))  # (I,) int32

    def retrieve(self, user_idx: Tensor, k: int) -> Tuple[Tensor, Tensor]:  # noqa: UP006
        scores = self.user_vectors[user_idx] @ self.item_vectors.T  # (B, I)
        scores = mask_seen_(scores, user_idx, self.seen_indptr, self.seen_indices)
        return topk_lowest_index_ties(scores, k, self.tie_rank, not self.pt2)

    def forward(self, user_idx: Tensor, k: int) -> Tuple[Tensor, Tensor]:  # noqa: UP006
        check_indices(user_idx, self.num_users, "user_idx", self.pt2)
        if k < 1 or k > self.num_items:
            raise ValueError(
                "k must be in [1, " + str(self.num_items) + "] (the catalogue size), got " + str(k)
            )
        return self.retrieve(user_idx, k)


class Pt2Retriever(Retriever):
    """The torch.export form: `k` is a 0-d int64 tensor, since export would freeze a Python int."""

    def forward(self, user_idx: Tensor, k: Tensor) -> Tuple[Tensor, Tensor]:  # noqa: UP006
        check_indices(user_idx, self.num_users, "user_idx", True)
        message = "k must be in [1, " + str(self.num_items) + "] (the catalogue size)"
        torch._assert_async((k >= 1) & (k <= self.num_items), message)
        kk = k.item()
        torch._check(kk >= 1)
        torch._check(kk <= self.num_items)
        return self.retrieve(user_idx, kk)


class UserEncoder(nn.Module):
    """forward(user_idx int64[B]) -> float32[B, D]: the scorer's own `user_embedding`.

    Side features are buffers inside the scorer, so indices are the whole input.
    """

    def __init__(self, scorer: nn.Module, pt2: bool = False):
        super().__init__()
        self.scorer, self.pt2 = scorer, pt2
        self.num_users = int(scorer.num_users)

    def forward(self, user_idx: Tensor) -> Tensor:
        check_indices(user_idx, self.num_users, "user_idx", self.pt2)
        return self.scorer.user_embedding(user_idx).float()


class ItemEncoder(nn.Module):
    """forward(item_idx int64[N]) -> float32[N, D]: the scorer's own `item_embedding`, to rebuild
    the item index or load it into an ANN library."""

    def __init__(self, scorer: nn.Module, pt2: bool = False):
        super().__init__()
        self.scorer, self.pt2 = scorer, pt2
        self.num_items = int(scorer.num_items)

    def forward(self, item_idx: Tensor) -> Tensor:
        check_indices(item_idx, self.num_items, "item_idx", self.pt2)
        return self.scorer.item_embedding(item_idx).float()


class Propensity(nn.Module):
    """forward(user_idx int64[B], item_idx int64[B]) -> P(convert) float32[B].

    Wraps the model's propensity module (the hook: `recsys.serving.artifacts.propensity_module_of`), which
    already applies calibration and the down-sampling correction; this adds input validation.
    """

    def __init__(self, head: nn.Module, num_users: int, num_items: int, pt2: bool = False):
        super().__init__()
        self.head, self.pt2 = head, pt2
        self.num_users, self.num_items = int(num_users), int(num_items)

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        check_indices(user_idx, self.num_users, "user_idx", self.pt2)
        check_indices(item_idx, self.num_items, "item_idx", self.pt2)
        if not self.pt2 and user_idx.shape != item_idx.shape:
            raise ValueError("user_idx and item_idx must have the same shape (one pair per row)")
        return self.head(user_idx, item_idx).float()

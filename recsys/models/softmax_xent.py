"""Softmax cross-entropy of each row against shared candidates, with the gradient formed in the forward.

In-batch and sampled softmax (recsys/models/losses.py) score every row i against the same C
candidates: logits = U @ V.T + bias (B, C), loss = mean_i(logsumexp_j logits_ij - logits_ii), with
column i row i's target and accidental hits (candidates equal to row i's positive item, other than
column i) masked out. Through autograd that is a chain of passes over the (B, C) matrix: the logits,
a (B, C) mask, log_softmax and its saved output, nll's zero-filled gradient, log_softmax's backward,
then two matmuls. The gradient of the mean loss is (softmax - onehot) / B, so here it is formed in
the forward, on the softmax, and multiplied straight into dL/dU and dL/dV; nothing (B, C) is kept
for the backward, which only scales the two saved (B, D) and (C, D) gradients (the fused linear
cross-entropy of Liger Kernel and "Cut Your Losses" (Wijmans et al., 2024), for retrieval). On
CPU the hits come from a sort rather than a (B, C) comparison, and the two (B, C) buffers are
reused across steps (`ScratchBuffer`).
benchmarks/loss_speed.py measures it against the textbook autograd version.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from recsys.perf.scratch import ScratchBuffer

# How the softmax losses correct for sampling bias (logQ): training counts, a streaming estimate
# of in-batch frequencies, or not at all.
LOGQ_MODES = ("counts", "streaming", "none")


def check_logq_mode(loss: str, mode: str, allowed: tuple[str, ...] = LOGQ_MODES) -> str:
    if mode not in allowed:
        raise ValueError(f"{loss}: logq_correction must be one of {allowed}, got {mode!r}")
    return mode


def biased_logits(
    user: Tensor, candidates: Tensor, bias: Tensor | None, scratch: ScratchBuffer | None = None
) -> Tensor:
    """(B, C) logits user @ candidates.T + bias, at least float32: one fused addmm in full
    precision (into `scratch` when given); under bf16 autocast the bias is added in fp32 after the
    low-precision matmul."""
    full_precision = user.dtype in (torch.float32, torch.float64)
    if full_precision and not torch.is_autocast_enabled(user.device.type):
        shape = (user.shape[0], candidates.shape[0])
        out = None if scratch is None else scratch.take(shape, user.dtype, user.device)
        if bias is None:
            return torch.mm(user, candidates.T, out=out)
        return torch.addmm(bias.to(user.dtype), user, candidates.T, out=out)
    logits = user @ candidates.T
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return logits if bias is None else logits + bias


def accidental_hit_pairs(
    pos_items: Tensor, cand_items: Tensor, offset: int = 0
) -> tuple[Tensor, Tensor]:
    """(rows, cols) of every candidate `cols` equal to row `rows`'s positive item, the row's own
    target column (col == row + offset) excluded.

    From a sort of the candidates, not a (B, C) comparison: a batch holds few repeats, so this is a
    few small ops instead of passes over B * C elements. The pair count is data-dependent (a host
    sync on a GPU), so GPUs take `accidental_hit_mask`.
    """
    order = torch.argsort(cand_items)
    ordered = cand_items[order]
    lo = torch.searchsorted(ordered, pos_items)  # (B,) first sorted candidate equal to the positive
    counts = torch.searchsorted(ordered, pos_items, right=True) - lo  # (B,) candidates equal to it
    rows = torch.repeat_interleave(torch.arange(pos_items.numel(), device=pos_items.device), counts)
    # Pair k of row i is sorted candidate lo_i + (k - pairs before row i).
    shift = torch.repeat_interleave(lo - (counts.cumsum(0) - counts), counts)
    cols = order[shift + torch.arange(rows.numel(), device=rows.device)]
    keep = cols != rows + offset
    return rows[keep], cols[keep]


def accidental_hit_mask(pos_items: Tensor, cand_items: Tensor, offset: int = 0) -> Tensor:
    """(B, C) bool: candidate j equals row i's positive item and j != i + offset (no host sync)."""
    b = pos_items.shape[0]
    hit = pos_items[:, None] == cand_items[None, :]
    # not fill_diagonal_: compile refuses its as_strided view
    hit[:, offset : offset + b].diagonal().fill_(False)
    return hit


def mask_accidental_hits_(
    logits: Tensor,
    pos_items: Tensor,
    cand_items: Tensor,
    from_sort: bool | None = None,
    offset: int = 0,
) -> Tensor:
    """Set accidental-hit logits to -inf in place; returns the number of hits (0-d tensor).

    from_sort: find the hits with `accidental_hit_pairs` (default on CPU) or the dense mask.
    offset: row i's target is column i + offset.
    """
    if from_sort is None:
        from_sort = logits.device.type == "cpu"
    if from_sort:
        rows, cols = accidental_hit_pairs(pos_items, cand_items, offset)
        logits.index_put_((rows, cols), torch.tensor(-math.inf, dtype=logits.dtype))
        return torch.tensor(float(rows.numel()))
    hit = accidental_hit_mask(pos_items, cand_items, offset)
    logits.masked_fill_(hit, -math.inf)
    return torch.count_nonzero(hit).float()


class _SharedCandidateXent(torch.autograd.Function):
    """Mean cross-entropy of row i against column i + offset; dL/dU and dL/dV computed in the
    forward."""

    @staticmethod
    def forward(
        ctx, user, candidates, bias, pos_items, cand_items, mask_hits, need_grad, scratch, offset
    ):
        b = user.shape[0]
        logits = biased_logits(user, candidates, bias, scratch[0])  # (B, C) float32
        hits = logits.new_zeros(())
        if mask_hits:
            hits = mask_accidental_hits_(logits, pos_items, cand_items, offset=offset)
            hits = hits.to(logits.device)
        positive = logits[:, offset : offset + b].diagonal().clone()  # (B,) target logits
        top = logits.amax(1)  # (B,)
        probs = torch.softmax(
            logits, 1, out=scratch[1].take(logits.shape, logits.dtype, logits.device)
        )
        # logsumexp_i = top_i - log p_i,argmax: the softmax of the row's largest logit is 1 / sum_j
        # exp(logit_ij - top_i) >= 1 / C, so its log is exact where the target's log p_ii can
        # underflow. One softmax pass and two cheap row maxima instead of log_softmax and an exp of
        # it (exp on far-negative inputs is several times slower), or max(1) with indices (slow).
        logsumexp = top - probs.amax(1).log()
        per_row = logsumexp - positive  # (B,)
        loss = per_row.mean()
        stats = (logsumexp.mean(), positive.mean(), hits / b)
        if need_grad:
            # (B, C) softmax - onehot = B * dL/dlogits
            probs[:, offset : offset + b].diagonal().sub_(1.0)
            grad_user = (probs @ candidates.to(probs.dtype)).mul_(1.0 / b)  # (B, D)
            grad_candidates = (probs.T @ user.to(probs.dtype)).mul_(1.0 / b)  # (C, D)
            ctx.save_for_backward(grad_user, grad_candidates)
            ctx.dtypes = (user.dtype, candidates.dtype)
        ctx.mark_non_differentiable(*stats)
        return (loss, *stats)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss, *_):
        grad_user, grad_candidates = ctx.saved_tensors
        user_dtype, cand_dtype = ctx.dtypes
        return ((grad_user * grad_loss).to(user_dtype), (grad_candidates * grad_loss).to(cand_dtype),
                None, None, None, None, None, None, None)  # fmt: skip


def shared_candidate_xent(
    user: Tensor,
    candidates: Tensor,
    bias: Tensor | None,
    pos_items: Tensor,
    cand_items: Tensor,
    mask_hits: bool,
    scratch: tuple[ScratchBuffer, ScratchBuffer] | None = None,
    target_offset: int = 0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Mean over rows of -log softmax(user_i . candidates + bias)_{i + target_offset}.

    user (B, D), candidates (C >= target_offset + B, D), bias (C,) or None without gradient,
    pos_items (B,) and cand_items (C,) the item ids (for `mask_hits`). Returns the loss and
    detached parts to log: mean logsumexp, mean target logit, accidental hits per row. `scratch`:
    two buffers for the (B, C) logits and softmax, kept by the caller between steps (fresh ones
    otherwise). `target_offset`: where this batch's positives start among the candidates (under
    cross-rank negatives, the rows of the ranks before this one; recsys/models/cross_rank.py).
    """
    need_grad = torch.is_grad_enabled() and (user.requires_grad or candidates.requires_grad)
    loss, logsumexp, positive, hits = _SharedCandidateXent.apply(
        user,
        candidates,
        bias,
        pos_items,
        cand_items,
        mask_hits,
        need_grad,
        scratch or (ScratchBuffer(), ScratchBuffer()),
        target_offset,
    )
    parts = {"loss_logsumexp": logsumexp, "loss_positive_logit": positive,
             "accidental_hits_per_row": hits}  # fmt: skip
    return loss, parts

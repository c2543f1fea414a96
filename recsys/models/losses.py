"""Retrieval losses as objects with named knobs, injected from config (`model.losses`).

All share one call: `loss(user (B, D), positive (B, D), negatives (B, N, D), pos_items (B,),
neg_items (B, N)) -> scalar`, so the LightningModule never switches on a loss name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BPRLoss(nn.Module):
    """Bayesian personalised ranking (Rendle et al., 2009): -log sigmoid(s(u, i+) - s(u, i-))."""

    def forward(
        self,
        user: Tensor,
        positive: Tensor,
        negatives: Tensor,
        pos_items: Tensor,
        neg_items: Tensor,
    ) -> Tensor:
        pos = (user * positive).sum(-1, keepdim=True)  # (B, 1)
        neg = torch.einsum("bd,bnd->bn", user, negatives)  # (B, N)
        return -F.logsigmoid(pos - neg).mean()


class BCELoss(nn.Module):
    """Pointwise binary cross-entropy: positives labelled 1, sampled negatives 0."""

    def forward(
        self,
        user: Tensor,
        positive: Tensor,
        negatives: Tensor,
        pos_items: Tensor,
        neg_items: Tensor,
    ) -> Tensor:
        pos = (user * positive).sum(-1)  # (B,)
        neg = torch.einsum("bd,bnd->bn", user, negatives)  # (B, N)
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


class SampledSoftmaxLoss(nn.Module):
    """Softmax over in-batch positives plus sampled negatives (Yi et al., 2019, "Sampling-bias-corrected
    neural modeling for large corpus item recommendations").

    temperature: logits are divided by it.
    logq_correction: subtract log of each candidate's sampling probability (popularity for in-batch
        items, the negative sampler's for sampled ones), so popular items are not over-penalised.
    remove_accidental_hits: a candidate that is the row's own positive item (other than the target
        itself) is masked out instead of being pushed down.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        logq_correction: bool = True,
        remove_accidental_hits: bool = True,
    ):
        super().__init__()
        self.temperature, self.logq_correction = temperature, logq_correction
        self.remove_accidental_hits = remove_accidental_hits
        self.register_buffer("in_batch_log_q", torch.zeros(0), persistent=False)
        self.register_buffer("negative_log_q", torch.zeros(0), persistent=False)

    def prepare(self, item_counts: Tensor, negative_probs: Tensor | None = None) -> None:
        """Sampling probabilities from training counts: in-batch items appear in proportion to them."""
        counts = item_counts.double().clamp(min=1e-12)
        self.in_batch_log_q = (
            torch.log(counts / counts.sum()).float().to(self.in_batch_log_q.device)
        )
        if negative_probs is None:
            negative_probs = torch.full(
                (counts.numel(),), 1.0 / counts.numel(), dtype=torch.float64
            )
        self.negative_log_q = (
            torch.log(negative_probs.double().clamp(min=1e-12))
            .float()
            .to(self.in_batch_log_q.device)
        )

    def forward(
        self,
        user: Tensor,
        positive: Tensor,
        negatives: Tensor,
        pos_items: Tensor,
        neg_items: Tensor,
    ) -> Tensor:
        b = user.shape[0]
        candidates = torch.cat(
            [positive, negatives.reshape(-1, negatives.shape[-1])]
        )  # (B + B*N, D)
        cand_items = torch.cat([pos_items, neg_items.reshape(-1)])  # (B + B*N,)
        logits = (user @ candidates.T).float() / self.temperature  # (B, B + B*N)
        if self.logq_correction:
            if self.in_batch_log_q.numel() == 0:
                raise RuntimeError(
                    "SampledSoftmaxLoss.prepare(item_counts) must run before training with logQ"
                )
            log_q = torch.cat(
                [self.in_batch_log_q[pos_items], self.negative_log_q[neg_items.reshape(-1)]]
            )
            logits = logits - log_q
        if self.remove_accidental_hits:
            hit = pos_items[:, None] == cand_items[None, :]  # (B, B + B*N)
            hit[:, :b].fill_diagonal_(False)
            logits = logits.masked_fill(hit, -math.inf)
        target = torch.arange(b, device=user.device)
        return F.cross_entropy(logits, target)

"""Retrieval losses as objects with named knobs, injected from config (`model.losses`).

All share one call: `loss(user (B, D), positive (B, D), negatives (B, N, D), pos_items (B,),
neg_items (B, N)) -> scalar`, so the LightningModule never switches on a loss name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.models.cross_rank import candidate_batch, distributed
from recsys.models.softmax_xent import check_logq_mode, shared_candidate_xent
from recsys.perf.scratch import ScratchBuffer


class RetrievalLoss(nn.Module):
    """Base of every retrieval loss: the call below, plus what the LightningModule may ask of it.

    uses_negatives: False lets the module skip embedding the loader's sampled negatives.
    needs_sampled_negatives: True when the loss has nothing to compare a positive with unless the
        loader samples negatives (data.loader.num_negatives >= 1); the config check enforces it.
    parts: detached tensors of the last call worth logging as epoch means ({} for most losses).
    prepare: the builder hands every loss the training item counts and the negative sampler's
        probabilities; losses with a logQ correction keep them, the others ignore them.
    """

    uses_negatives: bool = True
    needs_sampled_negatives: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.parts: dict[str, Tensor] = {}

    def prepare(self, item_counts: Tensor, negative_probs: Tensor) -> None:
        """Sampling statistics; no-op for losses without a sampling correction."""

    def forward(
        self,
        user: Tensor,
        positive: Tensor,
        negatives: Tensor,
        pos_items: Tensor,
        neg_items: Tensor,
    ) -> Tensor:
        raise NotImplementedError


def row_scores(user: Tensor, candidates: Tensor) -> Tensor:
    """(B, N) dot products of each row's user with its own N candidates (B, N, D).

    Multiply-and-sum, not einsum: einsum lowers to B tiny batched matmuls, 3-9x slower on a CPU
    (forward + backward) for the few negatives per row these losses see.
    """
    return (candidates * user.unsqueeze(1)).sum(-1)


class BPRLoss(RetrievalLoss):
    """Bayesian personalised ranking (Rendle et al., 2009): -log sigmoid(s(u, i+) - s(u, i-))."""

    needs_sampled_negatives = True

    def forward(
        self,
        user: Tensor,
        positive: Tensor,
        negatives: Tensor,
        pos_items: Tensor,
        neg_items: Tensor,
    ) -> Tensor:
        pos = (user * positive).sum(-1, keepdim=True)  # (B, 1)
        neg = row_scores(user, negatives)  # (B, N)
        return -F.logsigmoid(pos - neg).mean()


class BCELoss(RetrievalLoss):
    """Pointwise binary cross-entropy: positives labelled 1, sampled negatives 0."""

    needs_sampled_negatives = True

    def forward(
        self,
        user: Tensor,
        positive: Tensor,
        negatives: Tensor,
        pos_items: Tensor,
        neg_items: Tensor,
    ) -> Tensor:
        pos = (user * positive).sum(-1)  # (B,)
        neg = row_scores(user, negatives)  # (B, N)
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


class SampledSoftmaxLoss(RetrievalLoss):
    """Softmax over in-batch positives plus sampled negatives (Yi et al., 2019, "Sampling-bias-corrected
    neural modeling for large corpus item recommendations").

    temperature: logits are divided by it.
    logq_correction: "counts" subtracts the log of each candidate's sampling probability (training
        frequency for in-batch items, the negative sampler's for sampled ones), so popular items are
        not over-penalised; "none" turns it off. ("streaming" is InBatchSoftmaxLoss's alone: it
        estimates in-batch frequencies online.)
    remove_accidental_hits: a candidate that is the row's own positive item (other than the target
        itself) is masked out instead of being pushed down.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        logq_correction: str = "counts",
        remove_accidental_hits: bool = True,
    ):
        super().__init__()
        self.temperature = temperature
        self.logq_correction = check_logq_mode(
            "SampledSoftmaxLoss", logq_correction, ("counts", "none")
        )
        self.remove_accidental_hits = remove_accidental_hits
        self.register_buffer("in_batch_log_q", torch.zeros(0), persistent=False)
        self.register_buffer("negative_log_q", torch.zeros(0), persistent=False)
        self._scratch = (ScratchBuffer(), ScratchBuffer())  # (B, C) logits and softmax, reused

    def prepare(self, item_counts: Tensor, negative_probs: Tensor) -> None:
        """Sampling probabilities from training counts: in-batch items appear in proportion to them."""
        counts = item_counts.double().clamp(min=1e-12)
        self.in_batch_log_q = (
            torch.log(counts / counts.sum()).float().to(self.in_batch_log_q.device)
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
        candidates = torch.cat(
            [positive, negatives.reshape(-1, negatives.shape[-1])]
        )  # (B + B*N, D)
        cand_items = torch.cat([pos_items, neg_items.reshape(-1)])  # (B + B*N,)
        if self.temperature != 1.0:
            user = user / self.temperature  # (B, D): cheaper than dividing the (B, C) logits
        bias = None  # additive (C,) correction without gradient, as in InBatchSoftmaxLoss
        if self.logq_correction == "counts":
            if self.in_batch_log_q.numel() == 0:
                raise RuntimeError(
                    "SampledSoftmaxLoss.prepare(item_counts) must run before training with logQ"
                )
            bias = -torch.cat(
                [self.in_batch_log_q[pos_items], self.negative_log_q[neg_items.reshape(-1)]]
            )
        loss, _ = shared_candidate_xent(
            user,
            candidates,
            bias,
            pos_items,
            cand_items,
            self.remove_accidental_hits,
            self._scratch,
        )  # (B, B + B*N) logits, never kept for the backward
        return loss


class InBatchSoftmaxLoss(RetrievalLoss):
    """In-batch sampled softmax with log-Q correction (Yi et al., 2019) and optional mixed negatives
    (Yang et al., 2020, "Mixed negative sampling for learning two-tower neural networks").

    Row i's candidates are the batch's B positive items plus, with `mixed_negatives`, the batch's
    B*N sampled catalogue items (shared by all rows). Logit(i, j) = <u_i, v_j> / temperature - log Q_j,
    with Q_j the expected number of times item j is among the candidates of a step:
      B * p_train(j) + B*N * p_neg(j)                      (logq_correction="counts"), or
      m_j / g_j + B*N * p_neg(j)                           ("streaming"),
    where g_j is the streamed estimate of the steps between batches holding j (Yi et al., Algorithm 2)
    and m_j the streamed mean number of copies of j in those batches. Yi et al. assume one copy at
    most (1 / g_j), true for a huge catalogue; on a small one a popular item fills several rows of a
    batch, and without m_j it would be under-corrected. Either way popular items are not pushed down just for being frequent negatives. With `remove_accidental_hits`
    a candidate equal to the row's own positive item (other than the target column) is masked out.

    temperature: divides the dot products; keep 1.0 when the scorer applies its own (learned) one,
        as `TwoTower` does by scaling the user embedding.
    streaming_alpha: learning rate of the streamed estimates (gap and copies per batch).
    cross_rank: under DDP the candidates are the global batch of all ranks, gathered with their
        gradient (recsys/models/cross_rank.py): B and B*N above become global counts, the streamed
        estimates see the global batch, hits are masked across it. No-op without DDP.
    After each call `parts` holds detached tensors (logsumexp, positive logit, hits per row) to log.
    """

    def __init__(
        self,
        temperature: float = 1.0,
        logq_correction: str = "counts",
        remove_accidental_hits: bool = True,
        mixed_negatives: bool = True,
        streaming_alpha: float = 0.01,
        cross_rank: bool = False,
    ):
        super().__init__()
        self.temperature, self.cross_rank = temperature, cross_rank
        self.logq_correction = check_logq_mode("InBatchSoftmaxLoss", logq_correction)
        self.remove_accidental_hits, self.mixed_negatives = remove_accidental_hits, mixed_negatives
        self.streaming_alpha = streaming_alpha
        self.register_buffer("train_probs", torch.zeros(0), persistent=False)  # (I,)
        self.register_buffer("negative_probs", torch.zeros(0), persistent=False)  # (I,)
        # Streaming state (persistent: a resumed run continues the estimate).
        self.register_buffer(
            "last_step", torch.zeros(0)
        )  # (I,) step an item was last seen; 0 = never
        self.register_buffer("gap", torch.zeros(0))  # (I,) estimated steps between occurrences
        self.register_buffer("copies", torch.zeros(0))  # (I,) estimated copies per batch holding it
        self.register_buffer("step", torch.zeros((), dtype=torch.float64))
        self._scratch = (ScratchBuffer(), ScratchBuffer())  # (B, C) logits and softmax, reused

    @property
    def uses_negatives(self) -> bool:
        """False lets the LightningModule skip embedding the sampled negatives."""
        return self.mixed_negatives

    def prepare(self, item_counts: Tensor, negative_probs: Tensor) -> None:
        """Training frequencies (for "counts") and the negative sampler's probabilities."""
        device = self.train_probs.device
        counts = item_counts.double()
        num_items = counts.numel()
        self.train_probs = (counts / counts.sum().clamp(min=1)).float().to(device)
        self.negative_probs = negative_probs.float().to(device)
        if self.gap.numel() != num_items:
            self.last_step = torch.zeros(num_items, device=device)
            self.gap = torch.full((num_items,), float(num_items), device=device)
            self.copies = torch.ones(num_items, device=device)

    def _update_stream(self, items: Tensor) -> None:
        """Yi et al. (2019) Algorithm 2 on item indices (no hashing needed), plus copies per batch.

        gap <- EMA of steps between batches holding the item; copies <- EMA of its count in them.
        Counts come from a sort (no host sync, no catalogue-sized work); duplicates in a batch
        compute identical values, so the order of the scattered writes is moot.
        """
        self.step += 1
        t = self.step.float()
        a = self.streaming_alpha
        ordered = items.sort().values
        count = (
            torch.searchsorted(ordered, items, right=True) - torch.searchsorted(ordered, items)
        ).float()  # (B,) copies of each row's item in this batch
        last = self.last_step[items]
        first = last == 0
        gap = (1 - a) * self.gap[items] + a * (t - last)
        copies = (1 - a) * self.copies[items] + a * count
        self.gap[items] = torch.where(first, t.expand_as(last), gap)
        self.copies[items] = torch.where(first, count, copies)
        self.last_step[items] = t.expand_as(last)

    def forward(
        self,
        user: Tensor,
        positive: Tensor,
        negatives: Tensor,
        pos_items: Tensor,
        neg_items: Tensor,
    ) -> Tensor:
        mixed = self.mixed_negatives and neg_items.numel() > 0
        batch = candidate_batch(
            positive,
            negatives.reshape(-1, positive.shape[-1]) if mixed else positive[:0],
            pos_items,
            neg_items.reshape(-1) if mixed else pos_items[:0],
            self.cross_rank and distributed(),
        )  # (C, D) and (C,): this rank's batch, or the global one
        if self.temperature != 1.0:
            user = user / self.temperature  # (B, D): cheaper than dividing (B, C) logits
        bias = self._log_q_bias(batch.cand_items, batch.rows, batch.mixed)  # (C,) or None
        # Fused: the (B, C) logits are masked, softmaxed and turned into gradients in the forward.
        loss, parts = shared_candidate_xent(user, batch.candidates, bias, pos_items, batch.cand_items,
                                            self.remove_accidental_hits, self._scratch,
                                            batch.offset)  # fmt: skip
        self.parts = parts
        return loss if batch.weight == 1.0 else loss * batch.weight

    def _log_q_bias(self, cand_items: Tensor, batch_size: int, n_mixed: int) -> Tensor | None:
        """-log Q_j of each candidate (C,), or None without correction (see the class docstring)."""
        if self.logq_correction == "none":
            return None
        if self.train_probs.numel() == 0:
            raise RuntimeError("InBatchSoftmaxLoss.prepare(item_counts) must run before training")
        if self.logq_correction == "streaming":
            if self.training:
                self._update_stream(cand_items[:batch_size])
            expected = self.copies[cand_items] / self.gap[cand_items].clamp(min=1.0)
        else:
            expected = batch_size * self.train_probs[cand_items]
        if n_mixed > 0:
            expected = expected + n_mixed * self.negative_probs[cand_items]
        return -torch.log(expected.clamp(min=1e-12))

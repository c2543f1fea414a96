"""Loss objects against direct, loop-based computations of their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from recsys.models.losses import BPRLoss, InBatchSoftmaxLoss, SampledSoftmaxLoss

B, N, D, NUM_ITEMS = 6, 2, 5, 9


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    user = torch.randn(B, D, generator=g)
    positive = torch.randn(B, D, generator=g)
    negatives = torch.randn(B, N, D, generator=g)
    pos_items = torch.tensor([0, 1, 1, 2, 3, 1])  # item 1 three times: accidental hits
    neg_items = torch.tensor(
        [[1, 4], [5, 0], [6, 7], [2, 8], [4, 4], [3, 6]]
    )  # some equal positives
    # An item's embedding is the same wherever it appears.
    for k, item in enumerate(neg_items.view(-1).tolist()):
        hit = (pos_items == item).nonzero()
        if len(hit):
            negatives.view(-1, D)[k] = positive[hit[0, 0]]
    for k in range(B):
        positive[k] = positive[(pos_items == pos_items[k]).nonzero()[0, 0]]
    return user, positive, negatives, pos_items, neg_items


def reference(user, positive, negatives, pos_items, neg_items, counts, neg_probs, *, temperature,
              logq, masking, mixed, stream=None) -> float:  # fmt: skip
    """Row by row, candidate by candidate: -logit(i, i) + log sum_j exp(logit(i, j))."""
    cands = [(positive[j], int(pos_items[j])) for j in range(B)]
    if mixed:
        cands += [(negatives[r, k], int(neg_items[r, k])) for r in range(B) for k in range(N)]
    m = B * N if mixed else 0
    p_train = [float(c) / float(counts.sum()) for c in counts]
    total = 0.0
    for i in range(B):
        logits, target = [], None
        for j, (vec, item) in enumerate(cands):
            if masking and item == int(pos_items[i]) and j != i:
                continue
            logit = float(user[i].double() @ vec.double()) / temperature
            if logq:
                in_batch = stream[item] if stream is not None else B * p_train[item]
                logit -= math.log(in_batch + m * float(neg_probs[item]))
            logits.append(logit)
            if j == i:
                target = logit
        total += -target + math.log(sum(math.exp(v) for v in logits))
    return total / B


COUNTS = torch.tensor([5, 30, 8, 3, 2, 1, 4, 6, 1])
NEG_PROBS = torch.tensor([0.05, 0.3, 0.1, 0.1, 0.1, 0.05, 0.1, 0.1, 0.1])


@pytest.mark.parametrize("logq", [True, False])
@pytest.mark.parametrize("masking", [True, False])
@pytest.mark.parametrize("mixed", [True, False])
def test_in_batch_softmax_matches_loop(logq, masking, mixed):
    loss = InBatchSoftmaxLoss(
        temperature=0.7,
        logq_correction="counts" if logq else "none",
        remove_accidental_hits=masking,
        mixed_negatives=mixed,
    )
    loss.prepare(COUNTS, NEG_PROBS)
    args = batch()
    got = float(loss(*args))
    want = reference(
        *args, COUNTS, NEG_PROBS, temperature=0.7, logq=logq, masking=masking, mixed=mixed
    )
    assert got == pytest.approx(want, abs=1e-5)


def test_masking_changes_the_loss_only_when_items_repeat():
    args = batch()
    on, off = (
        InBatchSoftmaxLoss(logq_correction="none", remove_accidental_hits=m) for m in (True, False)
    )
    assert float(on(*args)) < float(
        off(*args)
    )  # duplicates of a positive no longer act as negatives
    unique = [a[:1] if a.dim() else a for a in args]  # a single row has nothing to collide with
    unique[4] = torch.tensor([[7, 8]])
    assert float(on(*unique)) == pytest.approx(float(off(*unique)), abs=1e-6)


def streaming_reference(steps: list[torch.Tensor], num_items: int, alpha: float) -> list[float]:
    """Expected copies per batch, item by item: Yi et al. (2019) Algorithm 2's gap g <- (1-a) g +
    a (t - last seen), and the copies m <- (1-a) m + a (count in this batch); expected = m / g."""
    last, gap, copies = [0.0] * num_items, [float(num_items)] * num_items, [1.0] * num_items
    for t, items in enumerate(steps, start=1):
        for item in set(items.tolist()):
            count = items.tolist().count(item)
            if last[item] == 0:
                gap[item], copies[item] = float(t), float(count)
            else:
                gap[item] = (1 - alpha) * gap[item] + alpha * (t - last[item])
                copies[item] = (1 - alpha) * copies[item] + alpha * count
            last[item] = float(t)
    return [m / max(1.0, g) for m, g in zip(copies, gap, strict=True)]


def test_streaming_logq_matches_loop_and_tracks_frequencies():
    loss = InBatchSoftmaxLoss(temperature=1.0, logq_correction="streaming", streaming_alpha=0.05)
    loss.prepare(COUNTS, NEG_PROBS)
    g = torch.Generator().manual_seed(1)
    probs = COUNTS.double() / COUNTS.sum()
    steps = [torch.multinomial(probs, B, replacement=True, generator=g) for _ in range(1500)]
    for items in steps[:-1]:
        loss(*batch()[:3], items, batch()[4])
    before_last = streaming_reference(steps[:-1], NUM_ITEMS, 0.05)
    assert (loss.copies / loss.gap.clamp(min=1)).tolist() == pytest.approx(before_last, rel=1e-5)
    args = list(batch())
    args[3] = steps[-1]
    got = float(loss(*args))
    expected = streaming_reference(steps, NUM_ITEMS, 0.05)
    want = reference(*args, COUNTS, NEG_PROBS, temperature=1.0, logq=True, masking=True, mixed=True,
                     stream=expected)  # fmt: skip
    assert got == pytest.approx(want, abs=1e-5)


def test_streaming_estimate_tracks_expected_copies_per_batch():
    """Popular items fill many rows of a batch: the estimate follows B * p for them too."""
    counts = torch.tensor([400, 200, 100, 50, 25, 12, 6, 3, 2, 1])
    probs, b = counts.double() / counts.sum(), 64
    loss = InBatchSoftmaxLoss(
        logq_correction="streaming", streaming_alpha=0.01, mixed_negatives=False
    )
    loss.prepare(counts, torch.full((counts.numel(),), 1.0 / counts.numel()))
    g = torch.Generator().manual_seed(0)
    zeros = torch.zeros(b, 4)
    for _ in range(3000):
        items = torch.multinomial(probs, b, replacement=True, generator=g)
        loss(zeros, zeros, zeros[:, None, :0], items, items[:, None][:, :0])
    estimate = loss.copies / loss.gap.clamp(min=1)
    assert estimate.tolist() == pytest.approx((b * probs).tolist(), rel=0.25)


def test_bad_logq_mode_is_named():
    with pytest.raises(ValueError, match="logq_correction"):
        InBatchSoftmaxLoss(logq_correction="popularity")


@pytest.mark.parametrize("mode", ["counts", "none"])
def test_both_softmax_losses_take_one_logq_vocabulary(mode):
    """The same words configure both losses; a bool (the old sampled-softmax spelling) is refused."""
    for make in (InBatchSoftmaxLoss, SampledSoftmaxLoss):
        assert make(logq_correction=mode).logq_correction == mode
        with pytest.raises(ValueError, match=f"{make.__name__}: logq_correction"):
            make(logq_correction=True)
    with pytest.raises(ValueError, match="SampledSoftmaxLoss: logq_correction"):
        SampledSoftmaxLoss(logq_correction="streaming")


def test_logq_needs_prepare():
    with pytest.raises(RuntimeError, match="prepare"):
        InBatchSoftmaxLoss()(*batch())


def test_bpr_matches_loop():
    user, positive, negatives, pos_items, neg_items = batch()
    want = sum(
        -math.log(
            1 / (1 + math.exp(-(float(user[i] @ positive[i]) - float(user[i] @ negatives[i, k]))))
        )
        for i in range(B)
        for k in range(N)
    ) / (B * N)
    assert float(BPRLoss()(user, positive, negatives, pos_items, neg_items)) == pytest.approx(
        want, abs=1e-5
    )


@pytest.mark.parametrize("logq", [True, False])
@pytest.mark.parametrize("masking", [True, False])
def test_sampled_softmax_matches_loop(logq, masking):
    """Candidates: the batch's positives (log Q = log p_train) and every sampled negative (log p_neg)."""
    loss = SampledSoftmaxLoss(
        temperature=0.7,
        logq_correction="counts" if logq else "none",
        remove_accidental_hits=masking,
    )
    loss.prepare(COUNTS, NEG_PROBS)
    user, positive, negatives, pos_items, neg_items = batch(1)
    p_train = COUNTS.double() / COUNTS.sum()
    cands = [(positive[j], int(pos_items[j]), float(p_train[pos_items[j]])) for j in range(B)]
    cands += [
        (negatives[r, k], int(neg_items[r, k]), float(NEG_PROBS[neg_items[r, k]]))
        for r in range(B)
        for k in range(N)
    ]
    want = 0.0
    for i in range(B):
        logits = []
        for j, (vec, item, q) in enumerate(cands):
            if masking and item == int(pos_items[i]) and j != i:
                continue
            logits.append(
                float(user[i].double() @ vec.double()) / 0.7 - (math.log(q) if logq else 0)
            )
            if j == i:
                target = logits[-1]
        want += (-target + math.log(sum(math.exp(v) for v in logits))) / B
    got = float(loss(user, positive, negatives, pos_items, neg_items))
    assert got == pytest.approx(want, abs=1e-5)

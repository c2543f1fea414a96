"""The fused shared-candidate cross-entropy against autograd through the plain formula."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from recsys.models.softmax_xent import (
    accidental_hit_mask,
    accidental_hit_pairs,
    mask_accidental_hits_,
    shared_candidate_xent,
)
from recsys.perf.scratch import ScratchBuffer


def plain(user, candidates, bias, pos_items, cand_items, mask_hits):
    """The textbook version: (B, C) logits, masked_fill, F.cross_entropy, autograd for gradients."""
    logits = user @ candidates.T + (0 if bias is None else bias)
    if mask_hits:
        logits = logits.masked_fill(accidental_hit_mask(pos_items, cand_items), -math.inf)
    return F.cross_entropy(logits, torch.arange(user.shape[0]))


def inputs(b: int, c: int, num_items: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    pos_items = torch.randint(num_items, (b,), generator=g)  # few items: many repeats
    cand_items = torch.cat([pos_items, torch.randint(num_items, (c - b,), generator=g)])
    user = torch.randn(b, 8, generator=g, dtype=torch.float64).requires_grad_()
    candidates = torch.randn(c, 8, generator=g, dtype=torch.float64).requires_grad_()
    bias = -torch.rand(c, generator=g, dtype=torch.float64).log()
    return user, candidates, bias, pos_items, cand_items


@pytest.mark.parametrize("mask_hits", [True, False])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("b, c", [(16, 16), (12, 40)])
def test_loss_and_gradients_match_autograd(mask_hits, with_bias, b, c):
    user, candidates, bias, pos_items, cand_items = inputs(b, c, num_items=5, seed=b + c)
    bias = bias if with_bias else None
    want = plain(user, candidates, bias, pos_items, cand_items, mask_hits)
    want_grads = torch.autograd.grad(want * 3.0, (user, candidates))
    got, parts = shared_candidate_xent(user, candidates, bias, pos_items, cand_items, mask_hits)
    got_grads = torch.autograd.grad(got * 3.0, (user, candidates))  # upstream gradient 3 flows in
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)
    positive = (user * candidates[:b]).sum(1) + (0 if bias is None else bias[:b])
    assert float(parts["loss_positive_logit"]) == pytest.approx(positive.mean().item(), rel=1e-10)
    assert float(parts["loss_logsumexp"]) == pytest.approx(
        (want + positive.mean()).item(), rel=1e-10
    )
    hits = int(accidental_hit_mask(pos_items, cand_items).sum()) if mask_hits else 0
    assert float(parts["accidental_hits_per_row"]) == pytest.approx(hits / b)


def test_sorted_hit_pairs_equal_the_dense_mask():
    """The CPU path (pairs from a sort) marks exactly the cells of the dense (B, C) comparison."""
    for seed in range(5):
        _, _, _, pos_items, cand_items = inputs(64, 200, num_items=7 + 20 * seed, seed=seed)
        rows, cols = accidental_hit_pairs(pos_items, cand_items)
        from_pairs = torch.zeros(64, 200, dtype=torch.bool)
        from_pairs[rows, cols] = True
        assert rows.numel() == int(from_pairs.sum())  # no pair twice
        assert torch.equal(from_pairs, accidental_hit_mask(pos_items, cand_items))


def test_no_gradient_work_without_grad():
    user, candidates, bias, pos_items, cand_items = inputs(8, 8, num_items=3, seed=0)
    with torch.no_grad():
        loss, _ = shared_candidate_xent(user, candidates, bias, pos_items, cand_items, True)
    assert not loss.requires_grad
    assert float(loss) == pytest.approx(
        plain(user, candidates, bias, pos_items, cand_items, True).item()
    )


def test_both_ways_of_masking_set_the_same_cells():
    """CPU finds hits from a sort, GPUs from the dense comparison: the logits come out identical."""
    _, _, _, pos_items, cand_items = inputs(32, 96, num_items=6, seed=3)
    logits = torch.randn(32, 96)
    by_sort, by_mask = logits.clone(), logits.clone()
    hits_sort = mask_accidental_hits_(by_sort, pos_items, cand_items, from_sort=True)
    hits_mask = mask_accidental_hits_(by_mask, pos_items, cand_items, from_sort=False)
    assert torch.equal(by_sort, by_mask)
    assert float(hits_sort) == float(hits_mask) > 0


def test_bf16_autocast_gives_float_loss_and_input_dtype_gradients():
    """Under autocast (the CUDA recipe's precision) the matmuls run in bf16, the softmax in fp32."""
    user, candidates, bias, pos_items, cand_items = inputs(16, 16, num_items=5, seed=1)
    user = user.detach().float().requires_grad_()
    candidates = candidates.detach().float().requires_grad_()
    bias = bias.float()
    want = plain(user, candidates, bias, pos_items, cand_items, True)
    want_grads = torch.autograd.grad(want, (user, candidates))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = shared_candidate_xent(user, candidates, bias, pos_items, cand_items, True)
    assert got.dtype == torch.float32
    got_grads = torch.autograd.grad(got, (user, candidates))
    assert got.item() == pytest.approx(want.item(), rel=0.02)
    for g, w in zip(got_grads, want_grads, strict=True):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, w, rtol=0.05, atol=0.01)


def test_scratch_buffers_are_reused_across_calls_and_sizes():
    """The (B, C) buffers stay allocated between steps; a smaller last batch reuses them too."""
    scratch = (ScratchBuffer(), ScratchBuffer())
    pointers = set()
    for b in (16, 16, 12):
        user, candidates, bias, pos_items, cand_items = inputs(b, b, num_items=5, seed=b)
        want = plain(user, candidates, bias, pos_items, cand_items, True)
        got, _ = shared_candidate_xent(user, candidates, bias, pos_items, cand_items, True, scratch)
        assert got.item() == pytest.approx(want.item(), rel=1e-12)
        pointers.add(
            tuple(s.take((1,), torch.float64, torch.device("cpu")).data_ptr() for s in scratch)
        )
    assert len(pointers) == 1

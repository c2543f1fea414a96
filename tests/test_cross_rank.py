"""Cross-rank in-batch negatives (recsys/models/cross_rank.py): the fused kernel with the target
columns shifted, the gathered loss in a process group of one equal to the local loss bit for bit,
and in 2 gloo processes under real DDP the loss and gradients of a rank-split batch equal to one
process's on the concatenated batch (uneven splits, mixed negatives, logQ counts and streaming)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from recsys.models.losses import InBatchSoftmaxLoss
from recsys.models.softmax_xent import (
    accidental_hit_mask,
    accidental_hit_pairs,
    shared_candidate_xent,
)

NUM_ITEMS, D, N = 7, 4, 2  # few items: accidental hits within and across ranks
COUNTS = torch.tensor([9, 30, 4, 3, 12, 1, 6])
NEG_PROBS = torch.tensor([0.1, 0.3, 0.1, 0.1, 0.2, 0.1, 0.1])
CASES = [  # (logq_correction, mixed_negatives, remove_accidental_hits)
    ("counts", True, True),
    ("counts", False, True),
    ("streaming", True, True),
    ("none", True, False),
]


@pytest.mark.parametrize("offset", [0, 3, 9, 15])
def test_kernel_with_shifted_targets_matches_autograd(offset):
    """Row i's target is column i + offset; hits are masked everywhere else, the target kept."""
    g = torch.Generator().manual_seed(offset)
    b, c = 5, 20
    pos_items = torch.randint(4, (b,), generator=g)
    cand_items = torch.randint(4, (c,), generator=g)
    cand_items[offset : offset + b] = pos_items
    user = torch.randn(b, D, generator=g, dtype=torch.float64, requires_grad=True)
    candidates = torch.randn(c, D, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.rand(c, generator=g, dtype=torch.float64)
    hit = accidental_hit_mask(pos_items, cand_items, offset)
    assert not hit[torch.arange(b), torch.arange(b) + offset].any() and hit.any()
    logits = (user @ candidates.T + bias).masked_fill(hit, -math.inf)
    want = F.cross_entropy(logits, torch.arange(b) + offset)
    want_grads = torch.autograd.grad(want, (user, candidates))
    got, parts = shared_candidate_xent(
        user, candidates, bias, pos_items, cand_items, True, target_offset=offset
    )
    got_grads = torch.autograd.grad(got, (user, candidates))
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    for g_, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g_, w, rtol=1e-10, atol=1e-12)
    assert float(parts["accidental_hits_per_row"]) == pytest.approx(int(hit.sum()) / b)
    rows, cols = accidental_hit_pairs(pos_items, cand_items, offset)  # the CPU path's hits
    from_sort = torch.zeros_like(hit)
    from_sort[rows, cols] = True
    assert rows.numel() == int(hit.sum()) and torch.equal(from_sort, hit)


def make_loss(logq: str, mixed: bool, masking: bool, cross_rank: bool) -> InBatchSoftmaxLoss:
    loss = InBatchSoftmaxLoss(logq_correction=logq, mixed_negatives=mixed,
                              remove_accidental_hits=masking, streaming_alpha=0.3,
                              cross_rank=cross_rank)  # fmt: skip
    loss.prepare(COUNTS, NEG_PROBS)
    return loss


class Towers(nn.Module):
    """Id tables plus a shared dense layer on the item side: both kinds of gradient DDP averages."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.users, self.items = nn.Embedding(16, D), nn.Embedding(NUM_ITEMS, D)
        self.item_proj = nn.Linear(D, D)

    def forward(self, users, items, negatives):
        item = self.item_proj(self.items(torch.cat([items, negatives.reshape(-1)])))
        positive, negative = item.split([items.numel(), negatives.numel()])
        return self.users(users), positive, negative.view(*negatives.shape, D)


def global_batch(step: int, rows: int):
    g = torch.Generator().manual_seed(100 + step)
    return (torch.randint(16, (rows,), generator=g), torch.randint(NUM_ITEMS, (rows,), generator=g),
            torch.randint(NUM_ITEMS, (rows, N), generator=g))  # fmt: skip


def loss_and_grads(model, loss_fn, users, items, negatives):
    loss = loss_fn(*model(users, items, negatives), items, negatives)
    loss.backward()
    inner = getattr(model, "module", model)  # DDP names its parameters "module.<name>"
    grads = {k: p.grad.clone() for k, p in inner.named_parameters()}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


@pytest.fixture
def group_of_one(tmp_path):
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0,
                            world_size=1)  # fmt: skip
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("case", CASES)
def test_gathered_loss_in_a_group_of_one_is_the_local_loss(case, group_of_one):
    """The whole gathered path (size exchange, all-gather, reorder, all-reduce backward) runs."""
    model = Towers().double()
    local, gathered = make_loss(*case, cross_rank=False), make_loss(*case, cross_rank=True)
    for step in range(2):
        batch = global_batch(step, 9)
        want, want_grads = loss_and_grads(model, local, *batch)
        got, got_grads = loss_and_grads(model, gathered, *batch)
        assert torch.equal(got, want)
        for name, grad in want_grads.items():
            assert torch.equal(got_grads[name], grad), name
    for name in ("gap", "copies", "last_step"):
        assert torch.equal(getattr(gathered, name), getattr(local, name))


def _ddp_worker(rank: int, world: int, store: str) -> None:
    """One rank: every case, two steps (an even and an uneven split), checked against rank-local
    single-process references on the concatenated batch. Assertion errors reach the parent."""
    dist.init_process_group("gloo", store=dist.FileStore(store, world), rank=rank, world_size=world)
    try:
        for case in CASES:
            model = Towers().double()
            reference_model = copy.deepcopy(model)
            ddp = nn.parallel.DistributedDataParallel(model)
            gathered, local = make_loss(*case, cross_rank=True), make_loss(*case, cross_rank=False)
            for step, sizes in enumerate([(4, 4), (5, 3)]):
                batch = global_batch(step, sum(sizes))
                mine = [x.split(sizes)[rank] for x in batch]
                loss, grads = loss_and_grads(ddp, gathered, *mine)
                dist.all_reduce(loss)
                want, want_grads = loss_and_grads(reference_model, local, *batch)
                assert float(loss) / world == pytest.approx(float(want), rel=1e-12), (case, step)
                for name, grad in want_grads.items():
                    torch.testing.assert_close(grads[name], grad, rtol=1e-10, atol=1e-13)
            for name in ("gap", "copies", "last_step"):  # the stream saw the global batches
                assert torch.equal(getattr(gathered, name), getattr(local, name)), name
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_equal_one_process_on_the_concatenated_batch(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "store")), nprocs=2, join=True)

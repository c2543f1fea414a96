"""Row-sparse optimisation of embedding tables."""

from __future__ import annotations

import copy

import pytest
import torch

from recsys.models.components.mf import MatrixFactorization
from recsys.optim.sparse_adam import RowSparseAdam, SparseDenseAdam, split_sparse_parameters
from recsys.train import train
from tests.conftest import compile_fallbacks


def step(model, opt, users, items):
    opt.zero_grad()
    model.score(users, items).square().mean().backward()
    opt.step()


def test_only_touched_rows_change():
    torch.manual_seed(0)
    mf = MatrixFactorization(10, 20, 4, sparse=True)
    sparse, dense = split_sparse_parameters(mf)
    assert len(sparse) == 2 and dense == []  # user table, item table (bias in its last column)
    opt = SparseDenseAdam(sparse, dense, lr=0.1)
    before = mf.item_table.weight.detach().clone()
    step(mf, opt, torch.tensor([1, 2]), torch.tensor([3, 4]))
    changed = (mf.item_table.weight != before).any(1).nonzero().view(-1).tolist()
    assert changed == [3, 4]


def test_row_sparse_adam_matches_torch_sparse_adam():
    """Same lazy-Adam arithmetic as torch.optim.SparseAdam, repeated rows in a batch included."""
    torch.manual_seed(0)
    a = MatrixFactorization(10, 20, 4, sparse=True)
    b = copy.deepcopy(a)
    ours = RowSparseAdam(a.parameters(), lr=0.05, betas=(0.8, 0.99))
    reference = torch.optim.SparseAdam(list(b.parameters()), lr=0.05, betas=(0.8, 0.99))
    for t in range(5):
        users, items = torch.randint(10, (8,)), torch.randint(20, (8,))
        items[:3] = t  # duplicates: their gradients are summed before the update
        step(a, ours, users, items)
        step(b, reference, users, items)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)
    # Same state layout: a SparseAdam checkpoint continues under RowSparseAdam.
    resumed = RowSparseAdam(b.parameters(), lr=0.05, betas=(0.8, 0.99))
    resumed.load_state_dict(reference.state_dict())
    users, items = torch.randint(10, (8,)), torch.randint(20, (8,))
    step(a, ours, users, items)
    step(b, resumed, users, items)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    a = MatrixFactorization(10, 20, 4, sparse=True)
    b = MatrixFactorization(10, 20, 4, sparse=True)
    b.load_state_dict(a.state_dict())
    opt_a = SparseDenseAdam(*split_sparse_parameters(a), lr=0.05)
    users, items = torch.tensor([1, 2, 5]), torch.tensor([3, 4, 3])
    step(a, opt_a, users, items)
    b.load_state_dict(a.state_dict())
    opt_b = SparseDenseAdam(*split_sparse_parameters(b), lr=0.05)
    opt_b.load_state_dict(
        copy.deepcopy(opt_a.state_dict())
    )  # as if read back from a checkpoint file
    step(a, opt_a, users, items)
    step(b, opt_b, users, items)
    assert torch.equal(a.item_table.weight, b.item_table.weight)


def test_sparse_adam_config_trains_and_resumes(tiny_cfg, tmp_path):
    full, _ = train(
        tiny_cfg("optimizer=sparse_adam", "trainer.max_epochs=4", output_dir=tmp_path / "full")
    )
    train(tiny_cfg("optimizer=sparse_adam", "trainer.max_epochs=2", output_dir=tmp_path / "part"))
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    resumed, _ = train(
        tiny_cfg(
            "optimizer=sparse_adam",
            "trainer.max_epochs=4",
            f"ckpt_path={last}",
            output_dir=tmp_path / "part",
        )
    )
    assert resumed["test/ndcg@10"] == pytest.approx(full["test/ndcg@10"], abs=0)


def test_row_sparse_weight_decay_is_lazy_adamw():
    """Touched rows move exactly as under AdamW; rows no batch used keep their values."""
    torch.manual_seed(0)
    lazy = MatrixFactorization(10, 20, 4, sparse=True)
    dense = MatrixFactorization(10, 20, 4)
    dense.load_state_dict(lazy.state_dict())
    kwargs = dict(lr=0.05, weight_decay=0.5, eps=1e-12)  # Adam and SparseAdam place eps differently
    ours = SparseDenseAdam(*split_sparse_parameters(lazy), **kwargs)
    adamw = torch.optim.AdamW(dense.parameters(), **kwargs)
    users, items = torch.tensor([1, 2, 2]), torch.tensor([3, 4, 3])
    before = lazy.item_table.weight.detach().clone()
    step(lazy, ours, users, items)
    step(dense, adamw, users, items)
    touched = torch.tensor([3, 4])
    torch.testing.assert_close(lazy.item_table.weight[touched], dense.item_table.weight[touched])
    untouched = torch.tensor([i for i in range(20) if i not in (3, 4)])
    assert torch.equal(lazy.item_table.weight[untouched], before[untouched])
    assert not torch.allclose(
        dense.item_table.weight[untouched], before[untouched]
    )  # AdamW decays them


@pytest.mark.compiler
def test_compiled_row_update_matches_eager(compiled_names, recwarn):
    """`compile=True` fuses the update (torch.compile); the arithmetic stays lazy AdamW's."""
    torch.manual_seed(0)
    a = MatrixFactorization(30, 50, 8, sparse=True)
    b = copy.deepcopy(a)
    eager = RowSparseAdam(a.parameters(), lr=0.05, weight_decay=0.1)
    compiled = RowSparseAdam(b.parameters(), lr=0.05, weight_decay=0.1, compile=True)
    for t in range(6):
        users, items = torch.randint(30, (16 + t,)), torch.randint(50, (16 + t,))  # sizes vary
        items[:3] = t
        step(a, eager, users, items)
        step(b, compiled, users, items)
    assert compiled_names == ["lazy_adam_rows"]
    assert compile_fallbacks(recwarn) == [], "fell back to eager: compiling failed"
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(
            eager.state[pa]["exp_avg_sq"], compiled.state[pb]["exp_avg_sq"], rtol=1e-5, atol=1e-9
        )


def test_update_in_row_chunks_is_bit_identical():
    """On CPU the touched rows are updated a chunk at a time (cache-sized); any chunking gives the
    same parameters and moments to the bit, weight decay included, across steps of varying size."""
    torch.manual_seed(0)
    a = MatrixFactorization(40, 60, 8, sparse=True)
    b = copy.deepcopy(a)
    whole = RowSparseAdam(a.parameters(), lr=0.05, weight_decay=0.1)
    chunked = RowSparseAdam(b.parameters(), lr=0.05, weight_decay=0.1)
    whole.chunk_bytes = 2**40  # one chunk
    chunked.chunk_bytes = 3 * 9 * 4 * 5  # 5 rows of the 9-wide item table at a time
    assert chunked._chunk_rows(b.item_table.weight) == 5
    for t in range(5):
        users, items = torch.randint(40, (20 + t,)), torch.randint(60, (20 + t,))
        step(a, whole, users, items)
        step(b, chunked, users, items)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(whole.state[pa][key], chunked.state[pb][key])

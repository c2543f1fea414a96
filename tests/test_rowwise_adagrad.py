"""Row-wise Adagrad on embedding tables (optimizer=rowwise_adagrad)."""

from __future__ import annotations

import copy

import pytest
import torch

from recsys.models.components.mf import MatrixFactorization
from recsys.optim.rowwise_adagrad import RowWiseAdagrad
from recsys.optim.sparse_adam import parameter_groups, sparse_dense_adam
from recsys.train import train


def step(model, opt, users, items):
    opt.zero_grad()
    model.score(users, items).square().mean().backward()
    opt.step()


def reference_step(model, accumulators, lr, eps):
    """The textbook rule on dense gradients, one row at a time."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            grad = p.grad.to_dense()
            for r in range(p.shape[0]):
                if grad[r].abs().sum() == 0:
                    continue  # untouched row: weights and accumulator stay
                accumulators[name][r] += grad[r].square().mean()
                p[r] -= lr * grad[r] / (accumulators[name][r].sqrt() + eps)


def test_matches_the_row_by_row_rule_and_leaves_untouched_rows():
    torch.manual_seed(0)
    ours = MatrixFactorization(10, 20, 4, sparse=True)
    ref = copy.deepcopy(ours)
    opt = RowWiseAdagrad(ours.parameters(), lr=0.1, eps=1e-8)
    accumulators = {n: torch.zeros(p.shape[0]) for n, p in ref.named_parameters()}
    before = ours.item_table.weight.detach().clone()
    for t in range(4):
        users, items = torch.randint(10, (8,)), torch.randint(12, (8,))  # items 12-19 never used
        items[:3] = t  # duplicates: their gradients are summed before the update
        step(ours, opt, users, items)
        ref.zero_grad()
        ref.score(users, items).square().mean().backward()
        reference_step(ref, accumulators, lr=0.1, eps=1e-8)
    for (name, a), b in zip(ours.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(opt.state[a]["sum"], accumulators[name])
    assert torch.equal(ours.item_table.weight[12:], before[12:])
    assert (opt.state[ours.item_table.weight]["sum"][12:] == 0).all()


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    a = MatrixFactorization(10, 20, 4, sparse=True)
    b = copy.deepcopy(a)
    opt_a = sparse_dense_adam(parameter_groups(a), table_optimizer="rowwise_adagrad", table_lr=0.1)
    users, items = torch.tensor([1, 2, 5]), torch.tensor([3, 4, 3])
    step(a, opt_a, users, items)
    b.load_state_dict(a.state_dict())
    opt_b = sparse_dense_adam(parameter_groups(b), table_optimizer="rowwise_adagrad", table_lr=0.1)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as if read from a checkpoint
    step(a, opt_a, users, items)
    step(b, opt_b, users, items)
    assert torch.equal(a.item_table.weight, b.item_table.weight)


def test_dense_parameters_keep_adam_at_the_model_lr():
    """Tables: row-wise Adagrad at table_lr; everything else (here a linear layer): Adam at lr."""
    torch.manual_seed(0)
    model = torch.nn.ModuleDict(
        {"table": torch.nn.Embedding(6, 3, sparse=True), "dense": torch.nn.Linear(3, 1)}
    )
    opt = sparse_dense_adam(
        parameter_groups(model), lr=0.01, table_optimizer="rowwise_adagrad", table_lr=0.2
    )
    tables, dense = opt.inner
    assert isinstance(tables, RowWiseAdagrad) and tables.param_groups[0]["lr"] == 0.2
    assert isinstance(dense, torch.optim.Adam) and dense.param_groups[0]["lr"] == 0.01
    model["dense"](model["table"](torch.tensor([0, 2]))).sum().backward()
    opt.step()
    assert set(tables.state[model["table"].weight]) == {"step", "sum"}


def test_unknown_table_optimizer_is_named():
    with pytest.raises(ValueError, match="table_optimizer must be 'adam' or 'rowwise_adagrad'"):
        sparse_dense_adam(
            parameter_groups(MatrixFactorization(3, 3, 2, sparse=True)), table_optimizer="sgd"
        )


def test_config_trains_beats_popularity_and_resumes(tiny_cfg, tmp_path):
    """`optimizer=rowwise_adagrad` end to end: learns, and a resumed run ends where an unbroken one
    does (the accumulators are in the checkpoint)."""
    opt = "optimizer=rowwise_adagrad"
    full, _ = train(tiny_cfg(opt, "trainer.max_epochs=4", output_dir=tmp_path / "full"))
    assert full["test/ndcg@10"] > full["popularity/test/ndcg@10"]
    train(tiny_cfg(opt, "trainer.max_epochs=2", output_dir=tmp_path / "part"))
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    resumed, _ = train(
        tiny_cfg(opt, "trainer.max_epochs=4", f"ckpt_path={last}", output_dir=tmp_path / "part")
    )
    assert resumed["test/ndcg@10"] == pytest.approx(full["test/ndcg@10"], abs=0)

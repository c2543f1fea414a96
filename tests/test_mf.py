"""Matrix factorization scorer: the item bias lives in the item table's last column."""

from __future__ import annotations

import torch

from recsys.models.components.mf import MatrixFactorization


def test_item_bias_is_the_last_item_column_and_starts_at_zero():
    torch.manual_seed(0)
    mf = MatrixFactorization(5, 7, dim=3)
    assert mf.item_table.weight.shape == (7, 4)
    assert torch.equal(mf.item_table.weight[:, 3], torch.zeros(7))
    users, items = torch.tensor([0, 4]), torch.tensor([6, 1])
    with torch.no_grad():
        mf.item_table.weight[:, 3] = torch.arange(7.0)
    factors = (mf.user_table.weight[users] * mf.item_table.weight[items, :3]).sum(-1)
    torch.testing.assert_close(mf.score(users, items), factors + items.float())
    assert MatrixFactorization(5, 7, dim=3, item_bias=False).item_embedding(items).shape == (2, 3)


def test_checkpoint_with_separate_bias_table_loads_with_the_same_scores():
    """Checkpoints from before the merge stored the bias as `item_bias.weight` (num_items, 1)."""
    torch.manual_seed(0)
    user, item, bias = torch.randn(5, 3), torch.randn(7, 3), torch.randn(7, 1)
    old = {"user_table.weight": user, "item_table.weight": item, "item_bias.weight": bias}
    mf = MatrixFactorization(5, 7, dim=3)
    mf.load_state_dict(old)
    users = torch.tensor([0, 1, 2, 3, 4])
    expected = user @ item.T + bias.T
    torch.testing.assert_close(mf.score_all_items(users), expected)

"""Yardstick for the propensity head: logistic regression on one-hot user and item ids.

This is the classic per-user and per-item bias model of conversion; a head on learned
representations must beat it on AUC and log loss to earn its keep. scikit-learn, sparse inputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def _one_hot(users: Tensor, items: Tensor, num_users: int, num_items: int):
    from scipy import sparse

    n = users.numel()
    rows = np.repeat(np.arange(n), 2)
    cols = np.stack([users.numpy(), num_users + items.numpy()], axis=1).reshape(-1)
    return sparse.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, num_users + num_items))


def fit_predict_logreg(
    train: dict[str, Tensor],
    valid: dict[str, Tensor],
    test: dict[str, Tensor],
    num_users: int,
    num_items: int,
    keep_rate: float = 1.0,
    strengths: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0),
) -> tuple[Tensor, dict]:
    """Test probabilities (N,) of the L2-regularised model whose C has the best validation log loss.

    Rows are dicts with users, items, labels. When label-0 training rows were down-sampled at rate
    `keep_rate`, the logit is shifted by log(keep_rate), as for the head.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    def design(rows):
        return _one_hot(rows["users"].cpu(), rows["items"].cpu(), num_users, num_items)

    x_train, x_valid, x_test = design(train), design(valid), design(test)
    y_train, y_valid = train["labels"].cpu().numpy(), valid["labels"].cpu().numpy()
    shift = math.log(keep_rate)
    best = None
    for c in strengths:
        model = LogisticRegression(C=c, max_iter=1000).fit(x_train, y_train)
        p_valid = 1 / (1 + np.exp(-(model.decision_function(x_valid) + shift)))
        loss = log_loss(y_valid, p_valid, labels=[0, 1])
        if best is None or loss < best[0]:
            best = (loss, c, model)
    _, c, model = best
    p_test = 1 / (1 + np.exp(-(model.decision_function(x_test) + shift)))
    return torch.as_tensor(p_test, dtype=torch.float32), {"C": c}

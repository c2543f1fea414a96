"""The yardstick a marketing analyst would fit on the same customer table: a logistic regression
for churn / purchase, a ridge regression for value (scikit-learn), on the same encoded features
with side features one-hot. Regularisation is chosen on validation, as for the network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

STRENGTHS = (0.01, 0.1, 1.0, 10.0)


def _design(numeric: Tensor, categorical: Tensor, cardinalities: list[int]) -> np.ndarray:
    blocks = [numeric.numpy().astype(np.float64)]
    for i, n in enumerate(cardinalities):
        blocks.append(np.eye(n)[categorical[:, i].numpy()])
    return np.concatenate(blocks, axis=1)


def fit_predict_baseline(
    splits: dict, cardinalities: list[int], binary: bool
) -> tuple[Tensor, dict]:
    """Test predictions (probabilities, or values) of the model whose strength has the best
    validation log loss (binary) or MAE (value), and that choice with its validation score."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import log_loss, mean_absolute_error

    x = {k: _design(s.numeric, s.categorical, cardinalities) for k, s in splits.items()}
    y = {k: s.target.numpy() for k, s in splits.items()}
    best = None
    for strength in STRENGTHS:
        if binary:
            model = LogisticRegression(C=strength, max_iter=2000).fit(x["train"], y["train"])
            score = log_loss(y["valid"], model.predict_proba(x["valid"])[:, 1], labels=[0, 1])
        else:
            model = Ridge(alpha=1.0 / strength).fit(x["train"], y["train"])
            score = mean_absolute_error(y["valid"], np.clip(model.predict(x["valid"]), 0, None))
        if best is None or score < best[0]:
            best = (score, strength, model)
    _, strength, model = best
    pred = (
        model.predict_proba(x["test"])[:, 1]
        if binary
        else np.clip(model.predict(x["test"]), 0, None)
    )
    found = {"strength": strength, "valid_score": best[0], "model": model}
    return torch.as_tensor(pred, dtype=torch.float32), found


def linear_coefficients(model) -> tuple[Tensor, float]:
    """(coefficients over the design's columns, intercept) of a fitted scikit-learn linear model."""
    coef = torch.as_tensor(np.asarray(model.coef_), dtype=torch.float32).view(-1)
    return coef, float(np.asarray(model.intercept_).reshape(-1)[0])

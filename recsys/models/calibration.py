"""Post-hoc calibration of a propensity head, fitted on validation logits and labels.

- platt: p = sigmoid(a * z + b) (Platt, 1999), two parameters by maximum likelihood;
- temperature: p = sigmoid(z / T) (Guo et al., 2017, "On calibration of modern neural networks");
- isotonic: a monotone piecewise-linear map of the probability (Zadrozny & Elkan, 2002), stored as
  knots for `torch.searchsorted`;
- none: identity.
The result goes into the head's buffers (`WithPropensityHead.set_calibration`), so checkpoints and
exported modules apply it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

METHODS = ("platt", "temperature", "isotonic", "none")


def _fit_affine(logits: Tensor, labels: Tensor, fit_bias: bool) -> tuple[float, float]:
    """Maximum-likelihood (a, b) of sigmoid(a * z + b), by L-BFGS in float64 (a convex problem)."""
    z, y = logits.detach().double().cpu(), labels.detach().double().cpu()
    a = torch.ones((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=fit_bias)
    params = [a, b] if fit_bias else [a]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(a * z + b, y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(a.detach()), float(b.detach())


def fit_platt(logits: Tensor, labels: Tensor) -> tuple[float, float]:
    return _fit_affine(logits, labels, fit_bias=True)


def fit_temperature(logits: Tensor, labels: Tensor) -> float:
    """The temperature T (the head stores a = 1 / T); ranking is unchanged."""
    a, _ = _fit_affine(logits, labels, fit_bias=False)
    return 1.0 / a


def fit_isotonic(probs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Knots (x, y) of the isotonic regression of labels on probabilities (scikit-learn's PAV)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(probs.detach().double().cpu().numpy(), labels.detach().double().cpu().numpy())
    return torch.as_tensor(iso.X_thresholds_).float(), torch.as_tensor(iso.y_thresholds_).float()


def fit_calibration(method: str, logits: Tensor, labels: Tensor) -> dict:
    """Keyword arguments for `WithPropensityHead.set_calibration`, fitted on (logit, label) pairs.

    `logits` are the head's logits after the down-sampling correction (validation is never
    down-sampled, so calibration is fitted on the real base rate).
    """
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    if method == "platt":
        a, b = fit_platt(logits, labels)
        return {"a": a, "b": b}
    if method == "temperature":
        return {"a": 1.0 / fit_temperature(logits, labels), "b": 0.0}
    if method == "isotonic":
        x, y = fit_isotonic(torch.sigmoid(logits.double()), labels)
        return {"iso_x": x, "iso_y": y}
    return {}


def apply_calibration(params: dict, logits: Tensor) -> Tensor:
    """Probabilities from logits under `fit_calibration`'s result (the head's buffers do the same
    inside a model; this is for models that keep their calibration beside the checkpoint)."""
    z = logits.double()
    if "iso_x" in params:
        x, y = torch.as_tensor(params["iso_x"]).double(), torch.as_tensor(params["iso_y"]).double()
        p = torch.sigmoid(z)
        idx = torch.searchsorted(x, p).clamp(1, max(len(x) - 1, 1))
        x0, x1, y0, y1 = x[idx - 1], x[idx], y[idx - 1], y[idx]
        w = ((p - x0) / (x1 - x0).clamp(min=1e-12)).clamp(0, 1)
        return (y0 + w * (y1 - y0)).float()
    return torch.sigmoid(params.get("a", 1.0) * z + params.get("b", 0.0)).float()

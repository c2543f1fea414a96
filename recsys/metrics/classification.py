"""Binary classification and calibration metrics on tensors: a propensity is used as a probability,
so it is judged on ranking (AUC, PR-AUC), on probability quality (log loss, Brier) and on
calibration (ECE over equal-mass bins, reliability table), plus the marketer's lift table.

Scores may be logits or probabilities for AUC / PR-AUC (only their order matters); the other
metrics take probabilities.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _rank_average(x: Tensor) -> Tensor:
    """1-based ranks of `x` with ties given their average rank (as in the Mann-Whitney U test)."""
    sorted_x, order = torch.sort(x.double())
    _, inverse, counts = torch.unique_consecutive(sorted_x, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    average = ends - (counts.double() - 1) / 2  # mean of the ranks each tie group spans
    ranks = torch.empty_like(sorted_x)
    ranks[order] = average[inverse]
    return ranks


def binary_auc(scores: Tensor, labels: Tensor) -> Tensor:
    """ROC AUC = P(score of a random positive > score of a random negative), ties counted half."""
    labels = labels.bool().view(-1)
    n_pos = int(labels.sum())
    n_neg = labels.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return torch.tensor(float("nan"))
    ranks = _rank_average(scores.view(-1))
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return (u / (n_pos * n_neg)).float()


def average_precision(scores: Tensor, labels: Tensor) -> Tensor:
    """PR-AUC as average precision: mean precision at each positive, ties resolved as one threshold
    (the step-wise sum sklearn's `average_precision_score` computes)."""
    scores, labels = scores.view(-1).double(), labels.view(-1).double()
    order = torch.argsort(scores, descending=True)
    s, y = scores[order], labels[order]
    tp = torch.cumsum(y, 0)
    fp = torch.cumsum(1 - y, 0)
    last = torch.ones_like(s, dtype=torch.bool)  # last row of each group of tied scores
    last[:-1] = s[1:] != s[:-1]
    tp, fp = tp[last], fp[last]
    if tp[-1] == 0:
        return torch.tensor(float("nan"))
    precision = tp / (tp + fp)
    recall_gain = torch.diff(tp, prepend=tp.new_zeros(1)) / tp[-1]
    return (precision * recall_gain).sum().float()


def log_loss(probs: Tensor, labels: Tensor, eps: float = 1e-7) -> Tensor:
    p = probs.double().clamp(eps, 1 - eps)
    y = labels.double()
    return (-(y * p.log() + (1 - y) * (1 - p).log()).mean()).float()


def brier_score(probs: Tensor, labels: Tensor) -> Tensor:
    return ((probs.double() - labels.double()) ** 2).mean().float()


def _equal_mass_groups(probs: Tensor, num_bins: int, descending: bool = False) -> list[Tensor]:
    """Row indices split into `num_bins` groups of (near) equal size, ordered by probability."""
    order = torch.argsort(probs.view(-1), descending=descending, stable=True)
    return [g for g in torch.tensor_split(order, num_bins) if g.numel() > 0]


def reliability_table(probs: Tensor, labels: Tensor, num_bins: int = 15) -> dict[str, Tensor]:
    """Per equal-mass bin: count, mean predicted probability, observed rate (low to high)."""
    groups = _equal_mass_groups(probs, num_bins)
    p, y = probs.view(-1).double(), labels.view(-1).double()
    return {
        "count": torch.tensor([g.numel() for g in groups]),
        "mean_predicted": torch.stack([p[g].mean() for g in groups]),
        "observed_rate": torch.stack([y[g].mean() for g in groups]),
    }


def expected_calibration_error(probs: Tensor, labels: Tensor, num_bins: int = 15) -> Tensor:
    """ECE over equal-mass bins: sum over bins of (share of rows) x |mean predicted - observed|.

    Equal-mass bins (Nixon et al., 2019, "Measuring calibration in deep learning") keep every bin
    populated where predictions crowd into a narrow range, unlike equal-width bins.
    """
    table = reliability_table(probs, labels, num_bins)
    weight = table["count"].double() / table["count"].sum()
    gap = (table["mean_predicted"] - table["observed_rate"]).abs()
    return (weight * gap).sum().float()


def lift_table(probs: Tensor, labels: Tensor, num_groups: int = 10) -> dict[str, Tensor]:
    """Deciles by predicted probability, highest first: the marketer's lift and cumulative gain.

    lift = decile's conversion rate / overall rate; cumulative gain = share of all conversions
    caught by targeting the deciles down to this one.
    """
    groups = _equal_mass_groups(probs, num_groups, descending=True)
    p, y = probs.view(-1).double(), labels.view(-1).double()
    count = torch.tensor([g.numel() for g in groups], dtype=torch.float64)
    conversions = torch.stack([y[g].sum() for g in groups])
    rate = conversions / count
    overall = y.mean()
    return {
        "decile": torch.arange(1, len(groups) + 1),
        "count": count.long(),
        "conversions": conversions.long(),
        "conversion_rate": rate,
        "mean_predicted": torch.stack([p[g].mean() for g in groups]),
        "lift": rate / overall,
        "cumulative_gain": conversions.cumsum(0) / conversions.sum().clamp(min=1e-12),
        "cumulative_lift": (conversions.cumsum(0) / count.cumsum(0)) / overall,
    }


def classification_metrics(probs: Tensor, labels: Tensor, num_bins: int = 15) -> dict[str, float]:
    """auc, pr_auc, logloss, brier, ece (equal-mass bins), base rate and mean prediction."""
    probs, labels = probs.detach().view(-1).cpu(), labels.detach().view(-1).cpu()
    return {
        "auc": float(binary_auc(probs, labels)),
        "pr_auc": float(average_precision(probs, labels)),
        "logloss": float(log_loss(probs, labels)),
        "brier": float(brier_score(probs, labels)),
        "ece": float(expected_calibration_error(probs, labels, num_bins)),
        "base_rate": float(labels.double().mean()),
        "mean_predicted": float(probs.double().mean()),
    }

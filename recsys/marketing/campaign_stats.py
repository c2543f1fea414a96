"""The statistics of a campaign plan and its readout, as plain functions of counts and moments.

The readout's functions take numpy arrays (one entry per segment, or one for the whole campaign)
so every segment is computed in one pass; an entry whose group is empty comes out NaN.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from recsys.marketing.ab_plan import power_two_proportions


def z_quantile(level: float) -> float:
    """The normal quantile of a two-sided interval at `level` (1.96 at 0.95)."""
    return float(stats.norm.ppf(0.5 + level / 2))


def normal_interval(mean: float, sd: float | None, level: float, low=0.0, high=math.inf) -> dict:
    """mean +- z * sd at the two-sided `level`, clipped to [low, high]; sd None: the mean alone."""
    if sd is None:
        return {"expected": mean, "sd": None, "low": None, "high": None}
    z = z_quantile(level)
    return {
        "expected": mean,
        "sd": sd,
        "low": max(low, mean - z * sd),
        "high": min(high, mean + z * sd),
    }


def count_interval(p: np.ndarray, level: float) -> dict:
    """Conversions among customers converting independently with probabilities p: the sum is
    Poisson-binomial, mean sum p, variance sum p(1 - p); a normal interval, clipped to [0, n]."""
    sd = math.sqrt(float((p * (1 - p)).sum()))
    return normal_interval(float(p.sum()), sd, level, high=float(len(p)))


def detectable_mde(n: int, p1: float, alpha: float, power: float) -> float | None:
    """Smallest absolute lift over p1 that n customers per arm detect with `power` (bisection on
    ab_plan's power formula); None when no lift up to a rate of 1 reaches it."""
    low, high = 0.0, (1 - p1) * (1 - 1e-9)
    if n <= 0 or power_two_proportions(n, p1, p1 + high, alpha) < power:
        return None
    for _ in range(60):  # halves the bracket below 1e-18
        mid = (low + high) / 2
        reached = power_two_proportions(n, p1, p1 + mid, alpha) >= power
        low, high = (low, mid) if reached else (mid, high)
    return high


def wilson_interval(x: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval for x successes in n (Wilson, 1927): unlike the Wald interval it
    stays inside [0, 1] and keeps its coverage when x is 0 or n."""
    z = z_quantile(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        centre = (x + z**2 / 2) / (n + z**2)
        half = z * np.sqrt(n * p * (1 - p) + z**2 / 4) / (n + z**2)
    return centre - half, centre + half


def newcombe_difference(x1, n1, x2, n2, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval of p1 - p2 by Newcombe's hybrid score method (Newcombe, 1998, Stat Med 17:873,
    method 10): each rate's Wilson limits, combined as a square root of summed squares.

    Chosen over the Wald interval because a holdout is small by design and conversion rates are
    often a few percent: there the Wald interval's coverage falls well below nominal (and it is
    zero-width when a group has no conversions), while Newcombe's stays near it.
    """
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    l1, u1 = wilson_interval(x1, n1, level)
    l2, u2 = wilson_interval(x2, n2, level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt(
        (u1 - p1) ** 2 + (p2 - l2) ** 2
    )


def two_proportion_pvalue(x1, n1, x2, n2) -> np.ndarray:
    """Two-sided p-value of the pooled two-proportion z-test of p1 = p2; 1 where the pooled rate is
    0 or 1 (no variation: no evidence of a difference)."""
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
    p = 2 * stats.norm.sf(np.abs(z))
    return np.where(se > 0, p, np.where(np.isnan(se), np.nan, 1.0))


def welch_interval(m1, v1, n1, m2, v2, n2, level: float) -> tuple[np.ndarray, ...]:
    """Difference of means m1 - m2 with Welch's interval (unequal variances, Satterthwaite's
    degrees of freedom): the contact and holdout groups differ in size and, after a campaign, in
    spread. v: sample variances (ddof=1). Returns (difference, low, high); NaN below 2 per group."""
    m1, v1, n1, m2, v2, n2 = (np.asarray(a, dtype=float) for a in (m1, v1, n1, m2, v2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = v1 / n1, v2 / n2
        df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
        half = stats.t.ppf(0.5 + level / 2, df) * np.sqrt(a + b)
    half = np.where((a + b) == 0, 0.0, half)  # no spread in either group: the difference is exact
    half = np.where((n1 < 2) | (n2 < 2), np.nan, half)
    diff = m1 - m2
    return diff, diff - half, diff + half

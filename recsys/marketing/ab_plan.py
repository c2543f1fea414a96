"""How many users does an online A/B test on a conversion rate need?

Two-sided two-sample test of proportions, equal arms, normal approximation without continuity
correction (Fleiss, Levin & Paik, 2003, *Statistical Methods for Rates and Proportions*, 3rd ed.,
section 4.2; the same formula as R's `stats::power.prop.test`):

    n per arm = ( z_{1-alpha/2} * sqrt(2 * pbar * (1 - pbar))
                + z_{1-beta}    * sqrt(p1 * (1 - p1) + p2 * (1 - p2)) )^2 / (p2 - p1)^2

with p1 the baseline rate, p2 = p1 + mde (or p1 * (1 + mde) when the effect is relative),
pbar = (p1 + p2) / 2 and 1 - beta the power. The offline comparison (compare.py) says whether B
is worth testing; this says what the online test will cost.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

Z = NormalDist()


@dataclass
class ABPlan:
    baseline_rate: float  # p1
    target_rate: float  # p2
    alpha: float
    power: float
    per_arm: int  # users in each arm, rounded up
    arms: int
    total: int
    days: int | None  # at `daily_users` entering the test, if given

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        days = ""
        if self.days is not None:
            days = f", about {self.days} day{'s' if self.days != 1 else ''} at the given traffic"
        return (
            f"To detect a change in conversion from {self.baseline_rate:.2%} to {self.target_rate:.2%} "
            f"(two-sided, alpha={self.alpha:g}, power={self.power:.0%}), each of the {self.arms} arms "
            f"needs {self.per_arm:,} users: {self.total:,} in all{days}."
        )


def _check_rate(name: str, p: float) -> None:
    if not 0.0 < p < 1.0:
        raise ValueError(f"{name} must be a rate strictly between 0 and 1, got {p}")


def sample_size_per_arm(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Unrounded users per arm for a two-sided test of p1 vs p2 (formula in the module docstring)."""
    _check_rate("baseline rate", p1)
    _check_rate("target rate", p2)
    if p1 == p2:
        raise ValueError("the minimum detectable effect must be non-zero")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must lie in (0, 1), got alpha={alpha}, power={power}")
    pbar = (p1 + p2) / 2
    z_a, z_b = Z.inv_cdf(1 - alpha / 2), Z.inv_cdf(power)
    spread = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return spread**2 / (p2 - p1) ** 2


def power_two_proportions(n: float, p1: float, p2: float, alpha: float = 0.05) -> float:
    """Power with n users per arm (the same approximation, solved for power instead of n)."""
    pbar = (p1 + p2) / 2
    z_a = Z.inv_cdf(1 - alpha / 2)
    numerator = math.sqrt(n) * abs(p2 - p1) - z_a * math.sqrt(2 * pbar * (1 - pbar))
    return Z.cdf(numerator / math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))


def plan(
    baseline_rate: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = False,
    arms: int = 2,
    daily_users: float | None = None,
) -> ABPlan:
    """The plan for an absolute (`mde=0.02`: 5% -> 7%) or relative (`relative=True`) effect."""
    target = baseline_rate * (1 + mde) if relative else baseline_rate + mde
    per_arm = math.ceil(sample_size_per_arm(baseline_rate, target, alpha, power))
    total = per_arm * arms
    days = math.ceil(total / daily_users) if daily_users else None
    return ABPlan(baseline_rate, target, alpha, power, per_arm, arms, total, days)

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
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

from omegaconf import OmegaConf

from recsys.errors import ConfigError

Z = NormalDist()
PLAN_KEYS = ("baseline_rate", "mde", "alpha", "power", "relative", "arms", "daily_users")
REQUIRED = ("baseline_rate", "mde")
EXAMPLE = "e.g. python scripts/ab_plan.py baseline_rate=0.05 mde=0.02"


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
    """The plan for an absolute (`mde=0.02`: 5% -> 7%) or relative (`relative=True`) effect.

    Bad values raise ConfigError naming the key (the arguments are conf/ab_plan.yaml's keys).
    """
    check_inputs(baseline_rate, mde, alpha, power, arms, daily_users)
    target = baseline_rate * (1 + mde) if relative else baseline_rate + mde
    per_arm = math.ceil(sample_size_per_arm(baseline_rate, target, alpha, power))
    total = per_arm * arms
    days = math.ceil(total / daily_users) if daily_users else None
    return ABPlan(baseline_rate, target, alpha, power, per_arm, arms, total, days)


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{key}={value!r} is not a number ({EXAMPLE})")
    return float(value)


def _rate(key: str, value: Any) -> None:
    if not 0.0 < _number(key, value) < 1.0:
        raise ConfigError(f"{key}={value} must lie strictly between 0 and 1")


def check_inputs(baseline_rate, mde, alpha, power, arms, daily_users) -> None:
    """Every key in its range, named in the message; the target rate is checked by the formula."""
    _rate("baseline_rate", baseline_rate)
    if _number("mde", mde) <= 0:
        raise ConfigError(f"mde={mde} must be > 0: the smallest change worth detecting")
    _rate("alpha", alpha)
    _rate("power", power)
    if isinstance(arms, bool) or not isinstance(arms, int) or arms < 2:
        raise ConfigError(f"arms={arms!r} must be a whole number >= 2 (control + variants)")
    if daily_users is not None and _number("daily_users", daily_users) <= 0:
        raise ConfigError(f"daily_users={daily_users} must be > 0, or null to skip the duration")


def plan_from_config(cfg: Mapping[str, Any]) -> ABPlan:
    """`scripts/ab_plan.py`'s config (conf/ab_plan.yaml) as a plan; a key left out is named."""
    missing = [k for k in REQUIRED if OmegaConf.is_missing(cfg, k)]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} must be given ({EXAMPLE})")
    try:
        return plan(**{k: cfg[k] for k in PLAN_KEYS})
    except ValueError as err:  # the target rate outside (0, 1): the formula's own check
        raise ConfigError(f"{err} (baseline_rate={cfg['baseline_rate']}, mde={cfg['mde']})") from err

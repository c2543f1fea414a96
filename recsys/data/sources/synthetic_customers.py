"""A synthetic customer base with known truth: exactly the BG/NBD + Gamma-Gamma generative process.

Each observable `group` has its own BG/NBD and Gamma-Gamma parameters; `channel` is pure noise.
A customer's first purchase falls uniformly in the observed period; while alive they buy at rate
lambda ~ Gamma(r_g, alpha_g) per day and, after each repeat purchase, drop out with probability
p ~ Beta(a_g, b_g); every transaction's value is Gamma(p_g, nu) with nu ~ Gamma(q_g, gamma_g); its
item is drawn from a Zipf-popular catalogue (items carry no signal about the truth: they are there
for a retrieval model to suggest offers). Because the process is BG/NBD's own, the closed forms with
the TRUE group parameters are the exact Bayes posterior given a customer's observable history, at
any cut-off: `oracle_no_event` / `oracle_value` are the best any model of that history can do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.errors import ConfigError, DataError
from recsys.models.bgnbd import (
    BGNBDParams,
    GammaGammaParams,
    expected_value,
    p_no_event,
    table_columns,
)

CHANNELS = ("app", "store", "web")

# Ranges the group parameters are drawn from, in days, chosen so the base looks like retail: active
# customers buy a few times a month, a customer makes some 15-70 purchases in a lifetime, and about
# half of the base (dead, or alive but slow) is silent over a 30-day window.
_RATE_PER_DAY = (0.07, 0.25)  # mean purchase rate r / alpha of the group
_R = (0.8, 2.5)  # rate heterogeneity (small r: very uneven buyers)
_DROPOUT = (0.015, 0.06)  # mean dropout probability a / (a + b) per repeat purchase
_A = (1.5, 4.0)  # dropout heterogeneity (a > 1 keeps E[1/p] finite)
_SPEND = (20.0, 80.0)  # population mean transaction value p * gamma / (q - 1)
_P = (2.0, 6.0)  # per-transaction value shape (larger: steadier baskets)
_Q = (3.0, 8.0)  # spend heterogeneity across customers (q > 1 for a finite mean)


@dataclass
class SyntheticCustomerWorld:
    """Observed log up to `end`, the future after it, and the true parameters of each group."""

    events: pd.DataFrame  # customer, timestamp, item, value; timestamp <= end
    future: pd.DataFrame  # same columns; end < timestamp <= end + future_days
    customers: pd.DataFrame  # customer, group, channel (observable side features)
    latent: pd.DataFrame  # customer, lam, p, nu, dropout_index: the hidden truth, never a feature
    params: dict[str, BGNBDParams]  # per group
    spend: dict[str, GammaGammaParams]  # per group
    start: pd.Timestamp
    end: pd.Timestamp
    future_days: float

    def _group_params(self, table: pd.DataFrame):
        if "group" not in table.columns:
            raise DataError(
                "customer table: missing column group (the oracle's parameters are per group)"
            )
        names = list(self.params)
        codes = pd.Index(names).get_indexer(table["group"])
        if np.any(codes < 0):
            raise DataError(f"group: values outside this world's groups {names}")

        def stack(objs, attr):
            return np.array([getattr(objs[g], attr) for g in names], dtype=float)[codes]

        bg = BGNBDParams(*(stack(self.params, k) for k in ("r", "alpha", "a", "b")))
        gg = GammaGammaParams(*(stack(self.spend, k) for k in ("p", "q", "gamma")))
        return bg, gg

    def oracle_no_event(self, table: pd.DataFrame, window_days: float) -> np.ndarray:
        """True P(no event in the next `window_days` | history) per row of a customer table."""
        bg, _ = self._group_params(table)
        x, t_x, T = table_columns(table, ("frequency", "recency_days", "tenure_days"))
        return p_no_event(bg, x, t_x, T, window_days)

    def oracle_value(self, table: pd.DataFrame, window_days: float) -> np.ndarray:
        """True E[value spent in the next `window_days` | history] per row of a customer table."""
        bg, gg = self._group_params(table)
        names = ("frequency", "recency_days", "tenure_days", "n_events", "value_sum")
        x, t_x, T, n, s = table_columns(table, names)
        return expected_value(bg, gg, x, t_x, T, window_days, n, s)


def _draw_group_params(rng: np.random.Generator, num_groups: int):
    u = rng.uniform(size=(7, num_groups))

    def span(lo_hi, row):
        lo, hi = lo_hi
        return lo + (hi - lo) * u[row]

    rate, r, dropout, a = span(_RATE_PER_DAY, 0), span(_R, 1), span(_DROPOUT, 2), span(_A, 3)
    spend, p, q = span(_SPEND, 4), span(_P, 5), span(_Q, 6)
    names = [f"g{k}" for k in range(num_groups)]
    alpha, b, gamma = r / rate, a * (1 - dropout) / dropout, spend * (q - 1) / p
    bg = {g: BGNBDParams(*map(float, (r[k], alpha[k], a[k], b[k]))) for k, g in enumerate(names)}
    gg = {g: GammaGammaParams(*map(float, (p[k], q[k], gamma[k]))) for k, g in enumerate(names)}
    return names, bg, gg


def _repeat_times(rng, lam, dropout_index, birth, horizon) -> tuple[np.ndarray, np.ndarray]:
    """Repeat-purchase days of every customer, vectorised: (owner index, day), in no fixed order.

    A customer's purchases form a Poisson(lam) process from `birth`, stopped after the J-th repeat
    (J = dropout_index ~ Geometric(p)). With M ~ Poisson(lam * L) events in the horizon length L, the
    first n = min(M, J) sorted uniforms are L * S_k / S_{M+1}, where S_k sums k Exp(1) draws and
    S_{M+1} = S_n + Gamma(M + 1 - n): only the n purchases that happen are drawn.
    """
    length = horizon - birth
    m = rng.poisson(lam * length)
    n = np.minimum(m, dropout_index)
    owner = np.repeat(np.arange(len(lam)), n)
    gaps = rng.exponential(size=owner.size)
    csum = np.cumsum(gaps)
    first = np.cumsum(n) - n  # flat index where each customer's draws start
    before = np.concatenate([[0.0], csum])[first]  # the running sum before them
    s_k = csum - np.repeat(before, n)
    s_n = np.zeros(len(lam))
    has = n > 0
    s_n[has] = s_k[(first + n - 1)[has]]
    s_total = s_n + rng.gamma(shape=m - n + 1.0)
    return owner, birth[owner] + length[owner] * s_k / s_total[owner]


def _labels(prefix: str, count: int) -> np.ndarray:
    """Zero-padded string ids ("c00042"), so they sort in creation order."""
    digits = np.char.zfill(np.arange(count).astype(str), len(str(count - 1)))
    return np.char.add(prefix, digits).astype(object)


def synthetic_customer_world(
    num_customers: int = 20000,
    num_groups: int = 4,
    num_items: int = 300,
    days: float = 365,
    future_days: float = 90,
    seed: int = 0,
    start: str = "2024-01-01",
    popularity_skew: float = 1.0,
) -> SyntheticCustomerWorld:
    """Simulate the world; the same arguments give the same world, event for event."""
    for key, value in (
        ("num_customers", num_customers), ("num_groups", num_groups), ("num_items", num_items),
        ("days", days), ("future_days", future_days),
    ):  # fmt: skip
        if not value > 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    rng = np.random.default_rng(seed)
    names, bg, gg = _draw_group_params(rng, num_groups)
    group = rng.integers(num_groups, size=num_customers)
    channel = rng.integers(len(CHANNELS), size=num_customers)

    def per_customer(objs, attr):
        return np.array([getattr(objs[g], attr) for g in names])[group]

    lam = rng.gamma(per_customer(bg, "r"), 1.0 / per_customer(bg, "alpha"))
    p = rng.beta(per_customer(bg, "a"), per_customer(bg, "b"))
    nu = rng.gamma(per_customer(gg, "q"), 1.0 / per_customer(gg, "gamma"))
    dropout_index = rng.geometric(p)  # drops out right after this repeat purchase
    birth = rng.uniform(0.0, days, size=num_customers)
    owner, day = _repeat_times(rng, lam, dropout_index, birth, days + future_days)
    owner = np.concatenate([np.arange(num_customers), owner])
    day = np.concatenate([birth, day])

    value = rng.gamma(per_customer(gg, "p")[owner], 1.0 / nu[owner])
    rank = rng.permutation(num_items) + 1.0
    weight = rank**-popularity_skew
    item = rng.choice(num_items, size=owner.size, p=weight / weight.sum())

    ids = _labels("c", num_customers)
    item_ids = _labels("i", num_items)
    t0 = pd.Timestamp(start)
    seconds = np.round(day * 86400.0).astype("int64")
    log = pd.DataFrame(
        {
            "customer": ids[owner],
            "timestamp": (t0 + pd.to_timedelta(seconds, unit="s")).astype("datetime64[ns]"),
            "item": item_ids[item],
            "value": value,
        }
    )
    log = log.sort_values(["timestamp", "customer"], kind="stable", ignore_index=True)
    end = t0 + pd.to_timedelta(round(days * 86400), unit="s")
    observed = (log["timestamp"] <= end).to_numpy()
    customers = pd.DataFrame(
        {"customer": ids, "group": np.array(names)[group], "channel": np.array(CHANNELS)[channel]}
    )
    latent = pd.DataFrame(
        {"customer": ids, "lam": lam, "p": p, "nu": nu, "dropout_index": dropout_index}
    )
    return SyntheticCustomerWorld(
        events=log[observed].reset_index(drop=True),
        future=log[~observed].reset_index(drop=True),
        customers=customers,
        latent=latent,
        params=bg,
        spend=gg,
        start=t0,
        end=end,
        future_days=float(future_days),
    )

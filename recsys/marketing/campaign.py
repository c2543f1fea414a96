"""Campaign plan: whom to contact, with what offer, and a seeded holdout that measures the lift.

Customers are ranked by a strategy's score and the top `budget` are targeted:
  - "retain":     p_churn * expected_value (the value at risk: likely to leave and worth keeping),
  - "propensity": p_purchase,
  - "value":      expected_value.
A random share `holdout_fraction` of the targeted customers is kept uncontacted. The holdout is
drawn within each segment (stratified) so that contact and holdout have the same segment mix: a
lift read out later is then not confounded by a segment that landed more in one group.

The expected conversions and value are the model's predictions of behaviour WITHOUT contact: the
scores were learnt from customers who were not (or not specially) contacted. The campaign's effect
is not in them; it is what the contact-vs-holdout comparison (`recsys.marketing.readout`) measures.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.atomic_files import write_atomic, write_json
from recsys.errors import ConfigError, DataError
from recsys.marketing.ab_plan import sample_size_per_arm
from recsys.marketing.campaign_stats import count_interval, detectable_mde, normal_interval

STRATEGIES = {
    "retain": ("p_churn", "expected_value"),
    "propensity": ("p_purchase",),
    "value": ("expected_value",),
}
PROBABILITIES = ("p_purchase", "p_churn")
NON_NEGATIVE = ("expected_value", "value_var")
NUM_SCORE_SEGMENTS = 10  # deciles of the targeting score when the scores carry no segment
OFFER_SEP = "|"
PLAN_KIND = "campaign_plan"  # summary.json's "kind": marks a directory recsys wrote a plan into


@dataclass(frozen=True)
class CampaignConfig:
    budget: int  # customers to target (contact + holdout)
    strategy: str = "propensity"  # "retain", "propensity" or "value" (module docstring)
    holdout_fraction: float = 0.1  # share of the targeted customers kept uncontacted
    seed: int = 0  # seeds the holdout draw: same seed, same assignment
    mde: float = 0.02  # smallest absolute lift in the conversion rate worth detecting
    alpha: float = 0.05  # two-sided significance level of the readout's test
    power: float = 0.8  # chance of detecting a lift of `mde`
    interval: float = 0.95  # level of the expected-conversion intervals

    def __post_init__(self) -> None:
        if not _is_int(self.budget) or self.budget <= 0:
            raise ConfigError(f"budget={self.budget!r} must be a whole number of customers > 0")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy={self.strategy!r} must be one of {sorted(STRATEGIES)}")
        if not _is_int(self.seed):
            raise ConfigError(f"seed={self.seed!r} must be a whole number")
        for key in ("holdout_fraction", "mde", "alpha", "power", "interval"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise ConfigError(f"{key}={value!r} must lie strictly between 0 and 1")


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


@dataclass
class CampaignPlan:
    frame: pd.DataFrame  # one row per targeted customer, best rank first
    summary: dict  # JSON-ready: sizes, expectations with intervals, sample size, seed, strategy

    def write(self, out_dir: str | Path) -> None:
        """plan.parquet, plan.csv and summary.json, each written atomically. A non-empty
        directory without a plan's summary.json is refused: files recsys did not write stay."""
        out = Path(out_dir)
        check_out_dir(out, PLAN_KIND)
        buffer = io.BytesIO()
        self.frame.to_parquet(buffer, index=False, engine="pyarrow")
        write_atomic(out / "plan.parquet", buffer.getvalue())
        write_atomic(out / "plan.csv", self.frame.to_csv(index=False).encode())
        write_json(out / "summary.json", self.summary)  # last: it marks the directory as a plan's


def check_out_dir(out: Path, kind: str) -> None:
    """Refuse a non-empty directory whose summary.json is not of `kind` (or absent)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir={out} is a file, not a directory")
    if not out.exists() or not any(out.iterdir()):
        return
    try:
        previous = json.loads((out / "summary.json").read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        previous = None
    if previous != kind:
        raise ConfigError(
            f"out_dir={out} is not empty and holds no {kind} summary.json: refusing to overwrite "
            "files recsys did not write (choose a new or empty directory)"
        )


def check_scores(scores: pd.DataFrame, config: CampaignConfig) -> pd.DataFrame:
    """The scores with `customer` as str; each problem raises naming the column and row count."""
    for col in ("customer", "p_purchase"):
        if col not in scores.columns:
            raise DataError(f"the scores lack the column {col!r} (one row per customer)")
    for col in STRATEGIES[config.strategy]:
        if col not in scores.columns:
            raise ConfigError(
                f"strategy={config.strategy!r} needs the column {col!r}, which the scores lack"
            )
    if scores["customer"].isna().any():
        raise DataError(
            f"column 'customer': {int(scores['customer'].isna().sum())} rows lack an id"
        )
    df = scores.assign(customer=scores["customer"].astype(str)).reset_index(drop=True)
    dup = df["customer"].duplicated(keep=False)
    if dup.any():
        raise DataError(
            f"column 'customer': {int(dup.sum())} rows share an id (e.g. "
            f"{df.loc[dup, 'customer'].iloc[0]!r}); the scores need one row per customer"
        )
    for col in [c for c in PROBABILITIES + NON_NEGATIVE if c in df.columns]:
        values = pd.to_numeric(df[col], errors="coerce").astype(float)
        high = 1.0 if col in PROBABILITIES else np.inf
        bad = ~(np.isfinite(values) & (values >= 0) & (values <= high))
        if bad.any():
            allowed = "outside [0, 1]" if col in PROBABILITIES else "negative or infinite"
            raise DataError(f"column {col!r}: {int(bad.sum())} rows are NaN or {allowed}")
        df[col] = values
    if "segment" in df.columns:
        empty = df["segment"].isna() | (df["segment"].astype(str).str.strip() == "")
        if empty.any():
            raise DataError(f"column 'segment': {int(empty.sum())} rows have an empty segment")
        df["segment"] = df["segment"].astype(str)
    if config.budget > len(df):
        raise ConfigError(f"budget={config.budget} exceeds the {len(df)} scored customers")
    return df


def holdout_quotas(sizes: np.ndarray, fraction: float) -> np.ndarray:
    """Holdout count per segment: floor(fraction * n), plus one for the segments with the largest
    remainders until the total is round(fraction * sum n) (Hamilton's largest-remainder method).
    Every segment's count then lies within one customer of fraction * n, and the total is exact."""
    exact = sizes * fraction
    quotas = np.floor(exact).astype(np.int64)
    total = math.floor(fraction * sizes.sum() + 0.5)  # round half up, not to even
    order = np.argsort(-(exact - quotas), kind="stable")  # ties: the first segment in sort order
    quotas[order[: total - quotas.sum()]] += 1
    return quotas


def assign_holdout(segments: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """Bool per row: in the holdout. Within each segment the first quota rows of a seeded random
    order go to the holdout; rows are keyed by position, so the row order must be deterministic."""
    codes, _ = pd.factorize(segments, sort=True)
    sizes = np.bincount(codes)
    keys = np.random.default_rng(seed).random(len(codes))
    order = np.lexsort((keys, codes))  # by segment, then by random key: a permutation per segment
    starts = np.cumsum(sizes) - sizes
    position = np.empty(len(codes), dtype=np.int64)
    position[order] = np.arange(len(codes)) - starts[codes[order]]
    return position < holdout_quotas(sizes, fraction)[codes]


def offer_strings(offers, customers: pd.Series) -> pd.Series:
    """Each customer's offer items joined by '|' ("" without offers), in the order given.

    `offers`: a mapping customer -> list of item ids, or a DataFrame with `customer` and either
    `items` (a list per row) or `item` (one row per offer, in rank order).
    """
    if offers is None:
        return pd.Series("", index=customers.index)
    if isinstance(offers, pd.DataFrame):
        if "customer" not in offers.columns or not {"item", "items"} & set(offers.columns):
            raise DataError("offers need a 'customer' column and an 'item' or 'items' column")
        column = "items" if "items" in offers.columns else "item"
        long = offers.set_index(offers["customer"].astype(str))[column]
    elif isinstance(offers, Mapping):
        long = pd.Series(list(offers.values()), index=[str(k) for k in offers], dtype=object)
    else:
        raise DataError(f"offers must be a mapping or a DataFrame, got {type(offers).__name__}")
    long = long.explode().dropna().astype(str)
    if long.str.contains(OFFER_SEP, regex=False).any():
        raise DataError(f"offer item ids must not contain {OFFER_SEP!r}, the column's separator")
    joined = long.groupby(level=0, sort=False).agg(OFFER_SEP.join)
    return customers.map(joined).fillna("").astype(str)


def value_interval(group: pd.DataFrame, level: float) -> dict | None:
    """Sum of expected_value. The mean alone fixes no variance of a customer's realised value, so
    the interval needs the scores' optional `value_var` (e.g. from Gamma-Gamma); without it the
    point estimate is given alone (sd, low and high None). Customers are taken as independent."""
    if "expected_value" not in group.columns:
        return None
    var = group["value_var"].sum() if "value_var" in group.columns else None
    sd = None if var is None else math.sqrt(float(var))
    return normal_interval(float(group["expected_value"].sum()), sd, level)


def sample_size(baseline: float, holdout: int, config: CampaignConfig) -> dict:
    """ab_plan's equal-arm size for baseline -> baseline + mde. With more contacts than holdout the
    contact arm's noise is smaller than the formula assumes, so the figure errs on the safe side."""
    if not 0 < baseline < 1:
        raise DataError(f"the targeted customers' mean p_purchase is {baseline}: no rate to test")
    if baseline + config.mde >= 1:
        raise ConfigError(f"mde={config.mde} on the baseline rate {baseline:.4f} passes 1")
    target = baseline + config.mde
    needed = math.ceil(sample_size_per_arm(baseline, target, config.alpha, config.power))
    detectable = detectable_mde(holdout, baseline, config.alpha, config.power)
    warning = None
    if holdout < needed:
        can = f"about {detectable:.4f}" if detectable is not None else "no lift at all"
        warning = (
            f"The holdout of {holdout:,} customers is too small for mde={config.mde:g}: detecting "
            f"it at {config.power:.0%} power needs {needed:,}; this holdout detects {can}. Raise "
            "holdout_fraction or budget, or accept the larger effect."
        )
    return {
        "baseline_rate": baseline,
        "holdout_needed": needed,
        "holdout_planned": holdout,
        "detectable_mde": detectable,
        "warning": warning,
    }


def plan_campaign(
    scores: pd.DataFrame,
    config: CampaignConfig,
    offers: Mapping[str, Sequence[str]] | pd.DataFrame | None = None,
) -> CampaignPlan:
    """Rank, target the top `budget`, draw the stratified holdout, attach offers, sum expectations.

    `scores`: one row per customer with `customer`, `p_purchase` (P(at least one purchase in the
    window)) and, as the strategy needs, `p_churn`, `expected_value` (and optional `value_var`,
    the variance of the customer's value in the window). Without a `segment` column the segment is
    the decile of the targeting score among the targeted customers ("score_decile_01" = top), so
    the holdout is balanced across score levels. Ties in the score are broken by customer id.
    """
    df = check_scores(scores, config)
    cols = STRATEGIES[config.strategy]
    df["score"] = df[cols[0]] * df[cols[1]] if len(cols) == 2 else df[cols[0]]
    df = df.sort_values(["score", "customer"], ascending=[False, True], kind="mergesort")
    df = df.head(config.budget).reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    if "segment" not in df.columns:
        decile = (df["rank"] - 1) * NUM_SCORE_SEGMENTS // len(df) + 1
        df["segment"] = "score_decile_" + decile.astype(str).str.zfill(2)
    n_holdout = math.floor(config.holdout_fraction * len(df) + 0.5)
    if n_holdout == 0 or n_holdout == len(df):
        raise ConfigError(
            f"budget={config.budget} with holdout_fraction={config.holdout_fraction} leaves "
            f"{'no holdout' if n_holdout == 0 else 'no one to contact'}: change either"
        )
    holdout = assign_holdout(df["segment"], config.holdout_fraction, config.seed)
    df["group"] = np.where(holdout, "holdout", "contact")
    df["offer_items"] = offer_strings(offers, df["customer"])
    keep = ["rank", "customer", "segment", "group", "score", "p_purchase"]
    keep += [c for c in ("p_churn", "expected_value", "value_var") if c in df.columns]
    frame = df[keep + ["offer_items"]]
    return CampaignPlan(frame, plan_summary(frame, config))


def plan_summary(frame: pd.DataFrame, config: CampaignConfig) -> dict:
    groups = {g: frame[frame["group"] == g] for g in ("contact", "holdout")}
    return {
        "kind": PLAN_KIND,
        **asdict(config),
        "targeted": len(frame),
        "contacted": len(groups["contact"]),
        "holdout": len(groups["holdout"]),
        "segments": int(frame["segment"].nunique()),
        "with_offers": int((frame["offer_items"] != "").sum()),
        "expected_conversions": {
            g: count_interval(part["p_purchase"].to_numpy(), config.interval)
            for g, part in groups.items()
        },
        "expected_value": {g: value_interval(part, config.interval) for g, part in groups.items()},
        "sample_size": sample_size(
            float(frame["p_purchase"].mean()), len(groups["holdout"]), config
        ),
        "note": "expectations are predictions without contact; the holdout measures the effect",
    }

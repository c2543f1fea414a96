"""Campaign readout: did contacting customers change their behaviour? Contact vs holdout, after.

A planned customer converts when the outcome log holds at least one of their events in
[window_start, window_start + window_days). The lift is rate(contact) - rate(holdout): the holdout
was drawn at random from the same targeted customers (`recsys.marketing.campaign`), so the
difference estimates the campaign's effect on the contacted. Its interval is Newcombe's hybrid
score interval and its p-value the pooled two-proportion z-test (`campaign_stats` says why);
where the log has a `value` column, the mean window value per customer (0 for non-buyers) is
compared with Welch's interval. The same statistics are given per segment.

Events outside the window and events of customers not in the plan are counted in the summary,
never dropped silently: a large count of unknown customers usually means the log and the plan
use different ids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.atomic_files import write_atomic, write_json
from recsys.errors import ConfigError, DataError
from recsys.marketing.campaign import check_out_dir
from recsys.marketing.campaign_stats import (
    newcombe_difference,
    two_proportion_pvalue,
    welch_interval,
)

READOUT_KIND = "campaign_readout"  # summary.json's "kind": marks a directory holding a readout
GROUPS = ("contact", "holdout")
INTERVAL_METHOD = "Newcombe hybrid score (Wilson limits per group)"


@dataclass
class Readout:
    customers: (
        pd.DataFrame
    )  # one row per planned customer: segment, group, events, converted, value
    segments: pd.DataFrame  # one row per segment: sizes, rates, lift with interval, p-value
    summary: dict  # JSON-ready: the whole campaign's statistics, the event counts, the window

    def write(self, out_dir: str | Path) -> None:
        """summary.json, segments.csv and customers.csv, each atomically; a non-empty directory
        without a readout's summary.json is refused (files recsys did not write stay untouched)."""
        out = Path(out_dir)
        check_out_dir(out, READOUT_KIND)
        write_atomic(out / "segments.csv", self.segments.to_csv(index=False).encode())
        write_atomic(out / "customers.csv", self.customers.to_csv(index=False).encode())
        write_json(out / "summary.json", self.summary)  # last: it marks the directory


def check_plan(plan_frame: pd.DataFrame) -> pd.DataFrame:
    """customer, segment ("all" when absent) and group of each planned customer, ids as str."""
    for col in ("customer", "group"):
        if col not in plan_frame.columns:
            raise DataError(f"the plan lacks the column {col!r} (write it with plan_campaign)")
    plan = plan_frame.assign(customer=plan_frame["customer"].astype(str))
    if "segment" not in plan.columns:
        plan["segment"] = "all"
    plan = plan[["customer", "segment", "group"]].astype({"segment": str, "group": str})
    dup = plan["customer"].duplicated(keep=False)
    if dup.any():
        raise DataError(f"column 'customer': {int(dup.sum())} plan rows share an id")
    bad = ~plan["group"].isin(GROUPS)
    if bad.any():
        raise DataError(f"column 'group': {int(bad.sum())} plan rows are neither {GROUPS}")
    for group in GROUPS:
        if not (plan["group"] == group).any():
            raise DataError(f"column 'group': the plan has no {group} customer, so no lift")
    return plan.reset_index(drop=True)


def check_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    """customer (str), timestamp (datetime) and, where present, value (finite float)."""
    for col in ("customer", "timestamp"):
        if col not in outcomes.columns:
            raise DataError(f"the outcome log lacks the column {col!r}")
    ts = pd.to_datetime(outcomes["timestamp"], errors="coerce")
    if ts.isna().any():
        raise DataError(f"column 'timestamp': {int(ts.isna().sum())} outcome rows are not dates")
    log = pd.DataFrame({"customer": outcomes["customer"].astype(str), "timestamp": ts})
    if "value" in outcomes.columns:
        value = pd.to_numeric(outcomes["value"], errors="coerce").astype(float)
        if not np.isfinite(value).all():
            bad = int((~np.isfinite(value)).sum())
            raise DataError(f"column 'value': {bad} outcome rows are NaN or not numbers")
        log["value"] = value
    return log


def window_bounds(window_start, window_days: float, ts: pd.Series) -> tuple:
    if isinstance(window_days, bool) or not isinstance(window_days, int | float):
        raise ConfigError(f"window_days={window_days!r} must be a number of days > 0")
    if not window_days > 0 or not math.isfinite(window_days):
        raise ConfigError(f"window_days={window_days!r} must be a number of days > 0")
    try:
        start = pd.Timestamp(window_start)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"window_start={window_start!r} is not a date") from err
    if pd.isna(start):
        raise ConfigError(f"window_start={window_start!r} is not a date")
    if (start.tz is None) != (ts.dt.tz is None):
        raise ConfigError(
            f"window_start={start} and the outcome timestamps ({ts.dt.tz or 'no time zone'}) "
            "must both have a time zone or both have none"
        )
    return start, start + pd.Timedelta(days=window_days)


def lift_table(customers: pd.DataFrame, by: str, level: float) -> pd.DataFrame:
    """Per value of `by`: each group's size, conversions, rate (and mean value), then the lift with
    its interval, relative lift and p-value. One vectorised pass over all rows of the table."""
    has_value = "value" in customers.columns
    agg = {"customers": ("converted", "size"), "conversions": ("converted", "sum")}
    if has_value:
        agg |= {"value_mean": ("value", "mean"), "value_var": ("value", "var")}
    stats = customers.groupby([by, "group"]).agg(**agg).unstack("group")
    stats = stats.reindex(columns=pd.MultiIndex.from_product([list(agg), GROUPS]))
    sizes, conversions = stats["customers"].fillna(0), stats["conversions"].fillna(0)
    n_c, x_c = sizes["contact"], conversions["contact"]
    n_h, x_h = sizes["holdout"], conversions["holdout"]
    out = pd.DataFrame(index=stats.index)
    for group, n, x in (("contact", n_c, x_c), ("holdout", n_h, x_h)):
        out[f"customers_{group}"] = n.astype(int)
        out[f"conversions_{group}"] = x.astype(int)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"rate_{group}"] = x / n
    out["lift"] = out["rate_contact"] - out["rate_holdout"]
    out["lift_low"], out["lift_high"] = newcombe_difference(x_c, n_c, x_h, n_h, level)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = out["lift"] / out["rate_holdout"]
    out["relative_lift"] = relative.where(out["rate_holdout"] > 0)
    out["p_value"] = two_proportion_pvalue(x_c, n_c, x_h, n_h)
    if has_value:
        means, variances = stats["value_mean"], stats["value_var"]
        for group in GROUPS:
            out[f"value_mean_{group}"] = means[group]
        out["value_diff"], out["value_low"], out["value_high"] = welch_interval(
            means["contact"],
            variances["contact"],
            n_c,
            means["holdout"],
            variances["holdout"],
            n_h,
            level,
        )
    return out.reset_index()


def event_counts(log: pd.DataFrame, planned: pd.Series, in_window: pd.Series) -> dict:
    known = log["customer"].isin(planned)
    return {
        "total": len(log),
        "counted": int((known & in_window).sum()),
        "outside_window": int((known & ~in_window).sum()),
        "unknown_customer": int((~known).sum()),
        "unknown_customer_in_window": int((~known & in_window).sum()),
        "unknown_customers": int(log.loc[~known, "customer"].nunique()),
    }


def read_out(
    plan_frame: pd.DataFrame,
    outcomes: pd.DataFrame,
    window_start,
    window_days: float,
    level: float = 0.95,
) -> Readout:
    """The campaign's lift over the holdout, overall and per segment.

    `plan_frame`: the plan (`CampaignPlan.frame`, or plan.parquet / plan.csv read back) with
    `customer`, `group` and optionally `segment`; ids compare as strings, so read plan.csv with
    `dtype={"customer": str}` (a numeric parse drops leading zeros). `outcomes`: the event log
    after the plan with `customer`, `timestamp` and optionally `value`. `window_start`: anything
    `pd.Timestamp` reads; the window is [window_start, window_start + window_days). `level`: of
    every interval.
    """
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise ConfigError(f"level={level!r} must lie strictly between 0 and 1")
    plan, log = check_plan(plan_frame), check_outcomes(outcomes)
    start, end = window_bounds(window_start, window_days, log["timestamp"])
    in_window = (log["timestamp"] >= start) & (log["timestamp"] < end)
    counted = log[in_window & log["customer"].isin(plan["customer"])]
    per_customer = counted.groupby("customer").agg(events=("timestamp", "size"))
    if "value" in log.columns:
        per_customer["value"] = counted.groupby("customer")["value"].sum()
    customers = plan.join(per_customer, on="customer")
    customers["events"] = customers["events"].fillna(0).astype(int)
    customers["converted"] = (customers["events"] > 0).astype(int)
    if "value" in log.columns:
        customers["value"] = customers["value"].fillna(0.0)  # no purchase: a value of 0
    overall = lift_table(customers.assign(all="all"), "all", level).drop(columns="all")
    segments = lift_table(customers, "segment", level)
    summary = {
        "kind": READOUT_KIND,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "window_days": window_days,
        "level": level,
        "interval_method": INTERVAL_METHOD,
        "test": "two-sided pooled two-proportion z-test",
        **_json_row(overall),
        "segments": len(segments),
        "events": event_counts(log, plan["customer"], in_window),
    }
    return Readout(customers, segments, summary)


def _json_row(table: pd.DataFrame) -> dict:
    """A one-row table as JSON values (ints stay ints); NaN, from an empty group, becomes null."""
    row = table.to_dict("records")[0]
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}

"""One row per customer at a cut-off date: features from the history up to the cut-off, labels from
the window after it.

Features read only events at or before the cut-off (the leakage test moves every later event and
asserts the features do not change). A customer enters the table once their first event has
happened; one with a single event has no gaps, so gap features are 0 and `has_repeat` says why.

Feature names are the marketer's RFM vocabulary plus the BG/NBD summary (frequency = repeat events,
recency = last - first event, tenure = cut-off - first event, all in days), so the classical
anchor (recsys/models/bgnbd.py) reads the same table.
"""

from __future__ import annotations

import pandas as pd

from recsys.data.customers.log import EventLog

DAY = pd.Timedelta(days=1)
LABELS = ("churned", "purchased", "value_next")


def numeric_features(has_value: bool) -> list[str]:
    """The numeric columns a model reads, in a fixed order (checkpoints store it)."""
    base = [
        "n_events", "frequency", "recency_days", "tenure_days", "days_since_last",
        "events_last_window", "events_last_3_windows", "mean_gap_days", "std_gap_days",
        "distinct_items", "has_repeat",
    ]  # fmt: skip
    value = ["value_sum", "value_mean", "value_last_window"] if has_value else []
    return base + value


def _history_features(past: pd.DataFrame, cutoff: pd.Timestamp, window_days: float) -> pd.DataFrame:
    past = past.sort_values(["customer", "timestamp"], kind="stable")
    by = past.groupby("customer", sort=True)
    first, last = by["timestamp"].min(), by["timestamp"].max()
    n = by.size()
    age_days = (cutoff - past["timestamp"]) / DAY
    gaps = by["timestamp"].diff() / DAY  # NaN on each customer's first event
    frame = pd.DataFrame(
        {
            "n_events": n,
            "frequency": n - 1,
            "recency_days": (last - first) / DAY,
            "tenure_days": (cutoff - first) / DAY,
            "days_since_last": (cutoff - last) / DAY,
            "events_last_window": (age_days < window_days).groupby(past["customer"]).sum(),
            "events_last_3_windows": (age_days < 3 * window_days).groupby(past["customer"]).sum(),
            "mean_gap_days": gaps.groupby(past["customer"]).mean(),
            "std_gap_days": gaps.groupby(past["customer"]).std(ddof=0),
            "distinct_items": by["item"].nunique() if "item" in past else n,
        }
    )
    frame["has_repeat"] = (frame["frequency"] > 0).astype(float)
    if "value" in past:
        recent = past["value"].where(age_days < window_days, 0.0)
        frame["value_sum"] = by["value"].sum()
        frame["value_mean"] = by["value"].mean()
        frame["value_last_window"] = recent.groupby(past["customer"]).sum()
    return frame.fillna(0.0).astype(float)


def _window_labels(events: pd.DataFrame, index: pd.Index, cutoff, window_days) -> pd.DataFrame:
    ahead = events[
        (events["timestamp"] > cutoff) & (events["timestamp"] <= cutoff + window_days * DAY)
    ]
    count = ahead.groupby("customer").size().reindex(index, fill_value=0)
    if "value" in ahead:
        value = ahead.groupby("customer")["value"].sum().reindex(index, fill_value=0.0)
        bought = (ahead["value"] > 0).groupby(ahead["customer"]).any()
        purchased = bought.reindex(index, fill_value=False)
    else:  # activity is the purchase where the log has no monetary column
        value, purchased = count.astype(float), count > 0
    return pd.DataFrame(
        {"churned": (count == 0).astype(float), "purchased": purchased.astype(float),
         "value_next": value.astype(float)},
        index=index,
    )  # fmt: skip


def customer_table(
    log: EventLog, cutoff: pd.Timestamp, window_days: float, labels: bool = True
) -> pd.DataFrame:
    """Features of every customer seen by `cutoff`, side features joined, and (with `labels`) the
    labels of (cutoff, cutoff + window_days]. The index is the customer id (str)."""
    events = log.events
    past = events[events["timestamp"] <= cutoff]
    table = _history_features(past, cutoff, window_days)
    table.index.name = "customer"
    if log.customers is not None:
        side = log.customers.reindex(table.index)
        table = table.join(side.fillna("unknown").astype(str))
    if labels:
        table = table.join(_window_labels(events, table.index, cutoff, window_days))
    table["cutoff"] = cutoff
    return table

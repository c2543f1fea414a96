"""The event log customer models read: who did something, when, with what, for how much.

Customer targets (churn, next-period purchase, value) are questions about time, so a log without
timestamps is refused with an error saying so, never padded with an invented order. Every source
returns an `EventLog`; the table builder (table.py) knows nothing of where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataError

EVENT_COLUMNS = ("customer", "timestamp", "item", "value")


@dataclass
class EventLog:
    """`events`: customer (str), timestamp (datetime64[ns]), item (str), value (float, where the
    log has a monetary column). `customers`: static side features indexed by customer (str),
    categorical columns as strings. `truth`: where the world is synthetic, the object that knows
    the true probabilities (its `oracle_*` methods), else None."""

    events: pd.DataFrame
    name: str
    customers: pd.DataFrame | None = None
    report: dict[str, Any] = field(default_factory=dict)
    truth: Any = None

    def __post_init__(self) -> None:
        missing = [c for c in ("customer", "timestamp") if c not in self.events.columns]
        if "timestamp" in missing:
            raise DataError(
                f"{self.name}: customer targets need time, and this log has no timestamp column "
                "(churn and next-period purchase are defined by dates)"
            )
        if missing:
            raise DataError(f"{self.name}: the event log has no {missing[0]!r} column")
        if not pd.api.types.is_datetime64_any_dtype(self.events["timestamp"]):
            raise DataError(
                f"{self.name}: timestamp column must hold dates, not {self.events['timestamp'].dtype}"
            )
        bad = self.events["timestamp"].isna()
        if bad.any():
            raise DataError(
                f"{self.name}: {int(bad.sum())} events without a timestamp "
                f"(first at row {int(np.flatnonzero(bad.to_numpy())[0]) + 1})"
            )
        if self.events.empty:
            raise DataError(f"{self.name}: the event log is empty")

    @property
    def has_value(self) -> bool:
        return "value" in self.events.columns

    @property
    def start(self) -> pd.Timestamp:
        return self.events["timestamp"].min()

    @property
    def end(self) -> pd.Timestamp:
        return self.events["timestamp"].max()

    def summary(self) -> dict[str, Any]:
        events = self.events
        return {
            "name": self.name,
            "events": len(events),
            "customers": int(events["customer"].nunique()),
            "start": str(self.start),
            "end": str(self.end),
            "days": round((self.end - self.start) / pd.Timedelta(days=1), 2),
            "has_value": self.has_value,
            "side_features": [] if self.customers is None else list(self.customers.columns),
        }


def seconds_to_datetime(seconds: np.ndarray) -> pd.Series:
    """Unix seconds (as the generic reader parses every timestamp) to datetime64[ns]."""
    return pd.Series(pd.to_datetime(np.asarray(seconds, dtype=np.float64), unit="s"))

"""Where customer event logs come from: any timestamped file, MovieLens-100K, a synthetic world.

Each source is a callable returning an `EventLog`, built from config (`data.source`), so the table
builder and the models never know which one they read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.customers.log import EventLog, seconds_to_datetime
from recsys.data.ingest.log_table import read_log
from recsys.data.ingest.readers import read_delimited, to_int
from recsys.data.sources.movielens import AGE_BUCKETS, RATING_COLUMNS, MovieLens100K
from recsys.errors import ConfigError, DataError


@dataclass
class CustomerLogFile:
    """A CSV / TSV / Parquet log of events: `columns` maps customer, item, timestamp and (optional)
    value to the file's columns. Rows with a missing id or an unreadable value raise an error
    naming the row (the generic reader's rules, docs/data.md)."""

    path: str | None = None
    columns: dict = field(default_factory=lambda: {"customer": "customer", "item": "item",
                                                   "timestamp": "timestamp", "value": None})  # fmt: skip
    format: str | None = None  # noqa: A003 - the config key users write
    header: bool = True
    timestamp_format: str | None = None

    def __call__(self) -> EventLog:
        if self.path is None:
            raise ConfigError(
                "data.source.path: required, the event log (set data.source.path=events.csv)"
            )
        name = str(self.path)
        if self.columns.get("timestamp") is None:
            raise DataError(
                f"{name}: customer targets need time: set data.source.columns.timestamp to the "
                "column holding each event's date (this log has none configured)"
            )
        mapping = {
            "user": self.columns.get("customer"),
            "item": self.columns.get("item"),
            "timestamp": self.columns["timestamp"],
        }
        if self.columns.get("value") is not None:
            mapping["rating"] = self.columns["value"]  # read as a number with the rating's checks
        table = read_log(
            Path(self.path).expanduser(), mapping, self.format, self.header,
            timestamp_format=self.timestamp_format,
        )  # fmt: skip
        missing = (table.user < 0) | (table.item < 0)
        if missing.any():
            row = int(table.rows[int(missing.argmax())])
            raise DataError(f"{name}: row {row}: missing customer or item id")
        events = pd.DataFrame(
            {
                "customer": table.user_ids[table.user].astype(str),
                "timestamp": seconds_to_datetime(table.values["timestamp"]),
                "item": table.item_ids[table.item].astype(str),
            }
        )
        if "rating" in table.values:
            events["value"] = table.values["rating"].astype(np.float64)
        return EventLog(events, name, report={"rows_read": len(table)})


@dataclass
class MovieLensCustomers:
    """MovieLens-100K as a customer log: every rating is activity (no monetary value), about seven
    months of it; age bucket, gender and occupation are the side features."""

    root: str | None = None
    data_dir: str | None = field(default_factory=lambda: os.environ.get("RECSYS_DATA_DIR"))
    cache_dir: str = "~/.cache/recsys"

    def __call__(self) -> EventLog:
        folder = MovieLens100K(self.root, self.cache_dir, self.data_dir).folder()
        table = read_log(folder / "u.data", RATING_COLUMNS, "tsv", header=False)
        events = pd.DataFrame(
            {
                "customer": table.user_ids[table.user].astype(str),
                "timestamp": seconds_to_datetime(table.values["timestamp"]),
                "item": table.item_ids[table.item].astype(str),
            }
        )
        users = read_delimited(
            folder / "u.user", "|", ["user", "age", "gender", "occupation", "zip"]
        )
        age = to_int(users, "age", folder / "u.user").to_numpy()
        side = pd.DataFrame(
            {
                "age_bucket": np.digitize(age, AGE_BUCKETS).astype(str),
                "gender": users["gender"].to_numpy(),
                "occupation": users["occupation"].to_numpy(),
            },
            index=pd.Index(users["user"].astype(str).to_numpy(), name="customer"),
        )
        return EventLog(events, "ml-100k", side, report={"rows_read": len(table)})


@dataclass
class SyntheticCustomers:
    """A world drawn from the BG/NBD + Gamma-Gamma process (recsys/data/sources/synthetic_customers.py):
    its true churn probability and expected value are known, so calibration is checked against the
    truth rather than against noisy labels alone."""

    num_customers: int = 20000
    num_groups: int = 4
    num_items: int = 300
    days: int = 365
    future_days: int = 90
    seed: int = 0

    def __call__(self) -> EventLog:
        from recsys.data.sources.synthetic_customers import synthetic_customer_world

        world = synthetic_customer_world(
            num_customers=self.num_customers, num_groups=self.num_groups,
            num_items=self.num_items, days=self.days, future_days=self.future_days, seed=self.seed,
        )  # fmt: skip
        side = world.customers.set_index("customer")
        side.index = side.index.astype(str)
        side = side.astype(str)
        return EventLog(world.events, "synthetic-customers", side, truth=world)

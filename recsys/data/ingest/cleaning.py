"""Cleaning steps on a `LogTable`, each optional, each recorded in the `DataReport` with the rows it
removed and why. Order: blank rows -> rows with extra fields (on_invalid: drop) -> adjacency lines
with a bad id (on_invalid: drop) or only a user -> ids holding a line break -> missing ids ->
unparseable values -> duplicates -> rating threshold -> k-core (de-duplicating before the
threshold means a user's latest rating of an item is the one judged). Blank rows and ids with a
line break always go: a blank line holds no interaction, and a vocabulary file holds one id per line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.ingest.log_table import VALUE_FIELDS, LogTable
from recsys.data.ingest.report import DataReport
from recsys.errors import DataError


@dataclass
class Cleaning:
    drop_missing_ids: bool = True  # False: a missing user/item id is a DataError instead of a drop
    on_invalid: str = "error"  # error | drop: bad rating/timestamp/label; row with extra fields
    deduplicate: bool = True  # keep the last row of each (user, item) pair, by timestamp
    min_rating: float | None = None  # keep rows with rating >= this (implicit positives)
    min_user_interactions: int = 0  # k-core: users need this many rows (after the steps above)
    min_item_interactions: int = 0  # k-core: items need this many rows

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> Cleaning:
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise DataError(f"unknown cleaning keys {unknown}; known: {sorted(known)}")
        return cls(**cfg)


FLAG_REASONS = {
    "blank": ("drop_blank_rows", "blank row: every field is empty (e.g. an empty line)"),
    "extra_fields": (
        "drop_extra_field_rows",
        "more fields than the first row, e.g. an unquoted separator inside a field "
        "(cleaning.on_invalid: drop)",
    ),
    "invalid_ids": (  # format: adjacency (adjacency.py)
        "drop_invalid_ids",
        "id is not a non-negative integer (cleaning.on_invalid: drop); a bad user id drops its line",
    ),
    "user_only": ("drop_user_only_lines", "line holds a user id and no items (format: adjacency)"),
}
LINE_BREAKS = ("\n", "\r")  # what a one-id-per-line vocabulary file cannot hold (recsys.run_dir)


def drop_flagged_rows(table: LogTable, report: DataReport, role: str) -> LogTable:
    """Blank rows and rows with extra fields, as flagged by the text reader (Parquet has none)."""
    for flag, (step, reason) in FLAG_REASONS.items():
        if flag in table.flags:
            removed = table.flags[flag]
            report.drop(step, role, removed, reason, table.rows)
            table = table.subset(~removed) if removed.any() else table
    return table


def holds_line_break(ids: np.ndarray) -> np.ndarray:
    if len(ids) == 0:
        return np.zeros(0, dtype=bool)
    text = pd.Series(ids, dtype=object).astype(str)
    found = [text.str.contains(end, regex=False).to_numpy(bool) for end in LINE_BREAKS]
    return np.logical_or.reduce(found)


def drop_line_break_ids(table: LogTable, report: DataReport, role: str) -> LogTable:
    """Rows whose user or item id holds "\n" or "\r" (a quoted CSV field may): such an id could
    not be saved in, nor read back from, the run's vocabulary files."""
    bad_user, bad_item = holds_line_break(table.user_ids), holds_line_break(table.item_ids)
    users = np.append(bad_user, False)[table.user]  # code -1 (missing) picks the trailing False
    items = np.append(bad_item, False)[table.item]
    removed = users | items
    report.drop(
        "drop_line_break_ids",
        role,
        removed,
        "user or item id holds a line break (\\n or \\r); vocabulary files hold one id per line",
        table.rows,
        line_break_user=int(users.sum()),
        line_break_item=int(items.sum()),
    )
    return table.subset(~removed) if removed.any() else table


def drop_missing_ids(table: LogTable, report: DataReport, role: str, enabled: bool) -> LogTable:
    missing = (table.user < 0) | (table.item < 0)
    if missing.any() and not enabled:
        at = int(missing.argmax())
        name = "user" if table.user[at] < 0 else "item"
        raise DataError(
            f"{table.path}: row {table.rows[at]}, {table.describe_column(name)}: missing {name} id "
            "(set cleaning.drop_missing_ids: true to drop such rows)"
        )
    report.drop(
        "drop_missing_ids",
        role,
        missing,
        "user or item id is an empty field or a Parquet null",
        table.rows,
        missing_user=int((table.user < 0).sum()),
        missing_item=int((table.item < 0).sum()),
    )
    return table.subset(~missing) if missing.any() else table


def drop_invalid_values(table: LogTable, report: DataReport, role: str) -> LogTable:
    """Rows whose rating / timestamp / label is empty or did not parse (read with on_invalid=drop)."""
    bad = np.zeros(len(table), dtype=bool)
    by_column = {}
    for name in VALUE_FIELDS:
        if name in table.values:
            nan = np.isnan(table.values[name])
            by_column[name] = int(nan.sum())
            bad |= nan
    if not by_column:
        return table
    report.drop(
        "drop_invalid_values",
        role,
        bad,
        "rating/timestamp/label empty or not parseable (cleaning.on_invalid: drop)",
        table.rows,
        by_column=by_column,
    )
    return table.subset(~bad) if bad.any() else table


def deduplicate(table: LogTable, report: DataReport, role: str) -> LogTable:
    """Keep the last row of each (user, item): latest timestamp, then latest in the file."""
    key = table.user.astype(np.int64) * max(1, len(table.item_ids)) + table.item
    ts = table.values.get("timestamp")
    order = np.lexsort((ts, key)) if ts is not None else np.argsort(key, kind="stable")
    key = key[order]  # sorted in place of the original: one int64 copy less at the peak
    last = np.ones(len(order), dtype=bool)
    last[:-1] = key[1:] != key[:-1]
    del key
    removed = np.ones(len(table), dtype=bool)
    removed[order[last]] = False
    del order, last
    by = "timestamp, then file order" if ts is not None else "file order (no timestamp column)"
    report.drop(
        "deduplicate",
        role,
        removed,
        f"repeated (user, item) pair; kept the last by {by}",
        table.rows,
    )
    return table.subset(~removed) if removed.any() else table


def keep_positive(table: LogTable, report: DataReport, role: str, min_rating: float) -> LogTable:
    if "rating" not in table.values:
        raise DataError(f"{table.path}: cleaning.min_rating={min_rating} needs columns.rating")
    below = table.values["rating"] < min_rating
    report.drop(
        "min_rating", role, below, f"rating below {min_rating} (not a positive)", table.rows
    )
    return table.subset(~below) if below.any() else table


def k_core(
    table: LogTable, report: DataReport, role: str, min_user: int, min_item: int
) -> LogTable:
    """Repeatedly drop users and items with too few rows until every remaining one has enough."""
    keep = np.ones(len(table), dtype=bool)
    rounds = 0
    while True:
        users, items = table.user[keep], table.item[keep]
        user_count = np.bincount(users, minlength=len(table.user_ids))
        item_count = np.bincount(items, minlength=len(table.item_ids))
        ok = (user_count[users] >= min_user) & (item_count[items] >= min_item)
        if ok.all():
            break
        keep[np.flatnonzero(keep)[~ok]] = False
        rounds += 1
    report.drop(
        "k_core",
        role,
        ~keep,
        f"user with < {min_user} or item with < {min_item} interactions (iterated {rounds} rounds)",
        table.rows,
    )
    return table.subset(keep) if not keep.all() else table


def clean(
    table: LogTable, report: DataReport, role: str, cfg: Cleaning, filter_core: bool = True
) -> LogTable:
    """All configured steps in order; `filter_core=False` skips k-core (valid/test files)."""
    table = drop_flagged_rows(table, report, role)
    table = drop_line_break_ids(table, report, role)
    table = drop_missing_ids(table, report, role, cfg.drop_missing_ids)
    table = drop_invalid_values(table, report, role)
    if cfg.deduplicate:
        table = deduplicate(table, report, role)
    if cfg.min_rating is not None:
        table = keep_positive(table, report, role, cfg.min_rating)
    if filter_core and (cfg.min_user_interactions > 1 or cfg.min_item_interactions > 1):
        table = k_core(table, report, role, cfg.min_user_interactions, cfg.min_item_interactions)
    return table

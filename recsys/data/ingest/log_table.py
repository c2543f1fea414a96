"""One interaction file as compact arrays: integer codes for ids, floats for values, file row numbers.

Raw ids are kept as strings (an id is a label: `007` and `7` differ, and a CSV `7` equals a Parquet
`"7"` or `7`). Codes index the file's own id list in order of first appearance; `vocab` later maps the
training ids to contiguous indices. Row numbers count data rows from 1 (the header is not a row), so
every error and every dropped row can be found in an editor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.data.ingest.labels import LabelMap
from recsys.data.ingest.readers import (
    CHUNK_ROWS,
    FORMATS,
    check_file,
    found_columns,
    infer_format,
    iter_parquet,
    iter_text,
    resolve_columns,
)
from recsys.errors import DataError

VALUE_FIELDS = ("rating", "timestamp", "label")
EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass
class LogTable:
    path: str
    rows: np.ndarray  # (N,) 1-based data row of each entry in its file
    user: np.ndarray  # (N,) int32/int64 code into user_ids; -1 = missing
    item: np.ndarray  # (N,) code into item_ids; -1 = missing
    user_ids: np.ndarray  # code -> raw id (str)
    item_ids: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)  # rating/timestamp/label, NaN = bad
    columns: dict[str, str | int] = field(default_factory=dict)  # field -> column in the file

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def subset(self, index: np.ndarray) -> LogTable:
        """Rows by boolean mask or index array; id lists are shared, not copied."""
        return LogTable(
            self.path,
            self.rows[index],
            self.user[index],
            self.item[index],
            self.user_ids,
            self.item_ids,
            {k: v[index] for k, v in self.values.items()},
            self.columns,
        )

    def describe_column(self, name: str) -> str:
        return describe_column(name, self.columns.get(name, name))


def describe_column(name: str, column: str | int) -> str:
    """`column 'rating'`, or `column 'stars' (rating)` / `column 2 (rating)` when renamed."""
    return f"column {column!r}" if column == name else f"column {column!r} ({name})"


class _Codebook:
    """Raw id -> code across chunks: each chunk is factorised, then merged into the running list."""

    def __init__(self) -> None:
        self.index = pd.Index([], dtype=object)

    def encode(self, values: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        uniques = canonical_ids(uniques)
        blank = pd.Index(uniques, dtype=object).str.strip() == ""  # an empty id is a missing id
        mapping = (
            self.index.get_indexer(uniques) if len(self.index) else np.full(len(uniques), -1)
        ).astype(np.int64)
        new = (mapping == -1) & ~blank
        mapping[new] = len(self.index) + np.arange(int(new.sum()))
        if new.any():
            self.index = self.index.append(pd.Index(uniques[new], dtype=object))
        mapping[blank] = -1
        return np.append(mapping, -1)[codes]  # factorize's -1 (NA) picks the trailing -1

    def ids(self) -> np.ndarray:
        return np.asarray(self.index, dtype=object)


def canonical_ids(values: pd.Index | pd.Series | np.ndarray) -> np.ndarray:
    """Raw ids as strings, "" where missing; integral floats (ints that met a NaN) lose their `.0`."""
    series = pd.Series(np.asarray(values) if isinstance(values, pd.Index) else values)
    missing = series.isna().to_numpy()
    if pd.api.types.is_float_dtype(series.dtype):
        known = series[~missing]
        if (known == known.round()).all():
            series = series.astype("Int64")
    out = series.astype(str).to_numpy(dtype=object)
    out[missing] = ""
    return out


def parse_numbers(raw: pd.Series) -> np.ndarray:
    """float64 values; NaN where the field is empty or not a number."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        raw = raw.astype("float64")
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def parse_timestamps(raw: pd.Series, fmt: str | None) -> np.ndarray:
    """Seconds since the epoch from numbers, datetimes or date strings (ISO 8601 unless `fmt`)."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        when = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw
        return ((when - EPOCH) / pd.Timedelta(seconds=1)).to_numpy("float64", na_value=np.nan)
    seconds = parse_numbers(raw)
    text = np.isnan(seconds) & raw.notna().to_numpy()
    if text.any():
        dates = pd.to_datetime(
            pd.Series(raw[text].astype(str)), format=fmt or "ISO8601", errors="coerce", utc=True
        )
        seconds[text] = ((dates - EPOCH) / pd.Timedelta(seconds=1)).to_numpy(
            "float64", na_value=np.nan
        )
    return np.floor(seconds)


def _parse_value(
    name: str, raw: pd.Series, timestamp_format: str | None, labels: LabelMap
) -> np.ndarray:
    if name == "timestamp":
        return parse_timestamps(raw, timestamp_format)
    if name == "label":
        return labels.parse(raw)
    return parse_numbers(raw)


REASONS = {"rating": "is not a number", "timestamp": "is not a number of seconds or a date"}


def read_log(
    path: str | Path,
    columns: dict[str, str | int | None],
    format: str | None = None,  # noqa: A002 - the config key users write
    header: bool = True,
    sep: str | None = None,
    encoding: str = "utf-8",
    timestamp_format: str | None = None,
    on_invalid: str = "error",
    chunk_rows: int = CHUNK_ROWS,
    label_map: Mapping | None = None,
) -> LogTable:
    """Read one interaction file. With `on_invalid='error'` a bad rating/timestamp/label raises a
    DataError naming its row and column; with 'drop' it becomes NaN and cleaning counts the row.
    Labels are 0/1, or the keys of `label_map` (recsys.data.ingest.labels.LabelMap)."""
    if on_invalid not in ("error", "drop"):
        raise DataError(f"cleaning.on_invalid must be 'error' or 'drop', got {on_invalid!r}")
    labels = LabelMap.from_config(label_map)
    path = check_file(Path(path))
    fmt = infer_format(path, format)
    sep = sep or FORMATS[fmt]
    for required in ("user", "item"):
        if columns.get(required) is None:
            raise DataError(
                f"{path}: columns.{required} is required (the column holding {required} ids)"
            )
    found = found_columns(path, fmt, sep, header, encoding)
    cols = resolve_columns(path, found, columns, header)
    if label_map and "label" not in cols:
        raise DataError(f"{path}: label_map is set but columns.label is not (the column it maps)")
    reasons = {**REASONS, "label": labels.reason}
    chunks = (
        iter_parquet(path, cols, chunk_rows)
        if fmt == "parquet"
        else iter_text(path, sep, header, cols, encoding, chunk_rows)
    )
    users, items = _Codebook(), _Codebook()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("user", "item", *cols)}
    n = 0
    for chunk in chunks:
        # int32 codes right away: the parts of a 20M-row file are what the peak memory is made of.
        parts["user"].append(_narrow(users.encode(chunk["user"])))
        parts["item"].append(_narrow(items.encode(chunk["item"])))
        for name in VALUE_FIELDS:
            if name not in cols:
                continue
            values = _parse_value(name, chunk[name], timestamp_format, labels)
            bad = np.isnan(values)
            if on_invalid == "error" and bad.any():
                at = int(bad.argmax())
                raw = chunk[name].iloc[at]
                raw = "" if pd.isna(raw) else str(raw)
                raise DataError(
                    f"{path}: row {n + at + 1}, {describe_column(name, cols[name])}: "
                    f"{raw!r} {reasons[name]}"
                )
            parts[name].append(values.astype("float32") if name != "timestamp" else values)
        n += len(chunk)
        del chunk
    if n == 0:
        raise DataError(f"{path}: no data rows (only a header)")
    merged = {}
    for name in [k for k in parts if parts[k]]:  # field by field, freeing its parts as it goes
        merged[name] = np.concatenate(parts.pop(name))
    pa.default_memory_pool().release_unused()  # the chunks' Arrow strings, kept cached otherwise
    return LogTable(
        str(path),
        np.arange(1, n + 1, dtype=np.int32 if n < 2**31 - 1 else np.int64),
        merged.pop("user"),
        merged.pop("item"),
        users.ids(),
        items.ids(),
        merged,
        cols,
    )


def _narrow(codes: np.ndarray) -> np.ndarray:
    """int32 codes unless a file really has 2**31 distinct ids or more."""
    return codes.astype(np.int32) if codes.size == 0 or codes.max() < 2**31 - 1 else codes

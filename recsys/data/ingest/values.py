"""Rating, timestamp and label values of a log: parsed to float64, NaN where a value is refused.

A value is refused when it is empty, not a number (or date), or a number recsys cannot hold:
`inf`, `nan`, `1e999`, a rating beyond float32 (the tensors' type) or a timestamp beyond int64
seconds. Refused values raise a DataError naming the row (cleaning.on_invalid: error) or are
counted out by `cleaning.drop_invalid_values` (on_invalid: drop); none become a silent inf or a
wrapped-around integer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.ingest.labels import LabelMap

EPOCH = pd.Timestamp(0, tz="UTC")
FLOAT32_MAX = float(np.finfo(np.float32).max)
INT64_LIMIT = 2.0**63  # |seconds| at or past this wrap around as int64
LIMITS = {"rating": FLOAT32_MAX, "timestamp": INT64_LIMIT - 1024}  # float64 steps there are 2048
REASONS = {"rating": "is not a number", "timestamp": "is not a number of seconds or a date"}
OUT_OF_RANGE = {
    "rating": "is not a finite float32 number",
    "timestamp": "is not a finite number of seconds within int64",
}


def parse_numbers(raw: pd.Series) -> np.ndarray:
    """float64 values (a fresh, writable array); NaN where the field is empty or not a number."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        raw = raw.astype("float64")
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return np.array(raw.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)
    numbers = pd.to_numeric(raw, errors="coerce")
    return np.array(numbers.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)


def parse_timestamps(raw: pd.Series, fmt: str | None) -> np.ndarray:
    """Seconds since the epoch from numbers, datetimes, dates or date strings (ISO 8601 unless
    `fmt`); Parquet `date32` and date-string columns take the string path."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        when = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw
        seconds = (when - EPOCH) / pd.Timedelta(seconds=1)
        return np.array(seconds.to_numpy("float64", na_value=np.nan), dtype=np.float64)
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


def parse_value(
    name: str, raw: pd.Series, timestamp_format: str | None, labels: LabelMap
) -> np.ndarray:
    """One value column as float64, NaN where refused (see the module docstring)."""
    if name == "timestamp":
        values = parse_timestamps(raw, timestamp_format)
    elif name == "label":
        values = labels.parse(raw)
    else:
        values = parse_numbers(raw)
    if name in LIMITS:
        with np.errstate(invalid="ignore"):
            values[~(np.abs(values) <= LIMITS[name])] = np.nan  # inf, nan and overflow alike
    return values


def refusal(name: str, raw: object, labels: LabelMap) -> str:
    """Why the value `raw` of field `name` was refused, for the error naming its row."""
    if name == "label":
        return labels.reason
    try:
        float(str(raw))
    except ValueError:
        return REASONS[name]
    return OUT_OF_RANGE[name]

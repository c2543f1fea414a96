"""One interaction file as compact arrays: integer codes for ids, floats for values, file row numbers.

Raw ids are kept as strings, exactly as written (an id is a label: `007` and `7` differ, ` a` and `a`
differ, `NA` and `null` are ids, and a CSV `7` equals a Parquet `"7"` or `7`). A missing id is an empty
field or a Parquet null, nothing else. A text row whose every field is empty (a blank line) is flagged
for cleaning to count out; a row with more fields than the header is an error naming its line, or
with `on_invalid='drop'` an empty row flagged for cleaning to count out. Codes index the file's own
id list in order of first appearance; `vocab` later maps the training ids to contiguous indices. Row numbers count data rows from 1 (the header is not a row), so
every error and every dropped row can be found in an editor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.data.ingest.extra_fields import EXTRA_FIELDS
from recsys.data.ingest.labels import LabelMap
from recsys.data.ingest.parquet import iter_parquet
from recsys.data.ingest.readers import (
    BLANK,
    CHUNK_ROWS,
    FORMATS,
    check_file,
    describe_column,
    found_columns,
    infer_format,
    iter_text,
    resolve_columns,
)
from recsys.data.ingest.values import parse_value, refusal
from recsys.errors import DataError

VALUE_FIELDS = ("rating", "timestamp", "label")
FLAGS = {"blank": BLANK, "extra_fields": EXTRA_FIELDS}  # row problems found while reading
# (flag -> chunk column), counted out by cleaning


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
    flags: dict[str, np.ndarray] = field(default_factory=dict)  # FLAGS name -> (N,) bool

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
            {k: v[index] for k, v in self.flags.items()},
        )

    def describe_column(self, name: str) -> str:
        return describe_column(name, self.columns.get(name, name))


class _Codebook:
    """Raw id -> code across chunks: each chunk is factorised, then merged into the running list."""

    def __init__(self) -> None:
        self.index = pd.Index([], dtype=object)

    def encode(self, values: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        uniques = canonical_ids(uniques)
        blank = uniques == ""  # an empty field is a missing id; "NA", " " or "null" are ids
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
    DataError naming its row and column, and a text row with extra fields one naming its line; with
    'drop' the value becomes NaN, the row with extra fields an empty flagged row, and cleaning counts
    the row.
    Labels are 0/1, or the keys of `label_map` (recsys.data.ingest.labels.LabelMap)."""
    if on_invalid not in ("error", "drop"):
        raise DataError(f"cleaning.on_invalid must be 'error' or 'drop', got {on_invalid!r}")
    labels = LabelMap.from_config(label_map)
    path = check_file(Path(path))
    fmt = infer_format(path, format)
    if fmt == "adjacency":
        return _read_adjacency(path, columns, sep, encoding, on_invalid)
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
    chunks = (
        iter_parquet(path, cols, chunk_rows)
        if fmt == "parquet"
        else iter_text(path, sep, header, cols, encoding, chunk_rows, extra_fields=on_invalid)
    )
    users, items = _Codebook(), _Codebook()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("user", "item", *cols, *FLAGS)}
    n = 0
    for chunk in chunks:
        # int32 codes right away: the parts of a 20M-row file are what the peak memory is made of.
        parts["user"].append(_narrow(users.encode(chunk["user"])))
        parts["item"].append(_narrow(items.encode(chunk["item"])))
        # Rows that cleaning counts out before values matter (blank, missing id) raise nothing here.
        flagged = _flag_rows(chunk, parts) | (parts["user"][-1] < 0) | (parts["item"][-1] < 0)
        for name in VALUE_FIELDS:
            if name not in cols:
                continue
            values = parse_value(name, chunk[name], timestamp_format, labels)
            bad = np.isnan(values) & ~flagged
            if on_invalid == "error" and bad.any():
                at = int(bad.argmax())
                raw = chunk[name].iloc[at]
                raw = "" if pd.isna(raw) else str(raw)
                raise DataError(
                    f"{path}: row {n + at + 1}, {describe_column(name, cols[name])}: "
                    f"{raw!r} {refusal(name, raw, labels)}"
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
        {k: v for k, v in merged.items() if k not in FLAGS},
        cols,
        {k: v for k, v in merged.items() if k in FLAGS},
    )


def _read_adjacency(
    path: Path, columns: Mapping, sep: str | None, encoding: str, on_invalid: str
) -> LogTable:
    """`user item item ...` lines hold ids only: a value column or a delimiter set for them would
    be silently ignored, so it is refused. `header` does not apply (the lines have no header)."""
    from recsys.data.ingest.adjacency import read_adjacency  # it builds LogTables: import here

    values = [f"columns.{k}" for k in VALUE_FIELDS if columns.get(k) is not None]
    if values or sep is not None:
        raise DataError(
            f"{path}: format 'adjacency' holds only user and item ids; unset "
            + ", ".join(values + (["sep"] if sep is not None else []))
        )
    return read_adjacency(path, encoding, on_invalid)


def _flag_rows(chunk: pd.DataFrame, parts: dict[str, list[np.ndarray]]) -> np.ndarray:
    """Appends the chunk's `FLAGS` masks (text files only) and returns their union."""
    flagged = np.zeros(len(chunk), dtype=bool)
    for name, column in FLAGS.items():
        if column in chunk:
            mask = chunk.pop(column).to_numpy(bool)
            parts[name].append(mask)
            flagged |= mask
    return flagged


def _narrow(codes: np.ndarray) -> np.ndarray:
    """int32 codes unless a file really has 2**31 distinct ids or more."""
    return codes.astype(np.int32) if codes.size == 0 or codes.max() < 2**31 - 1 else codes

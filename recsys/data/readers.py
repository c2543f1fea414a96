"""Reading delimited text into DataFrames with errors that name the file and the column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.data.interactions import DataError


def read_delimited(
    path: Path, sep: str, names: list[str], min_columns: int | None = None, encoding: str = "utf-8"
) -> pd.DataFrame:
    """A header-less delimited file with the given column names; wrong shapes raise DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=None,
            engine="python" if len(sep) > 1 else "c",
            encoding=encoding,
            dtype=str,
        )
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: file is empty") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse as {sep!r}-separated text ({err})") from err
    need = min_columns if min_columns is not None else len(names)
    if frame.shape[1] < need:
        raise DataError(
            f"{path}: expected {need} columns ({', '.join(names[:need])}), found {frame.shape[1]}"
        )
    frame = frame.iloc[:, : len(names)]
    frame.columns = names[: frame.shape[1]]
    return frame


def to_int(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """Integer column, or a DataError naming the first bad row (1-based, as in an editor)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(
            f"{path}: row {row + 1}, column {column!r}: {frame[column].iloc[row]!r} is not an integer"
        )
    return values.astype("int64")

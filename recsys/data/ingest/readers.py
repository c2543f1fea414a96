"""Reading text (through pandas) and Parquet (through pyarrow) with errors that name the file and column.

Logs are read in chunks of rows so that a 20M-row file never sits in memory as Python strings;
`log_table` turns each chunk into compact integer codes and floats right away.

Text is read as strings with no NA guessing: `NA`, `null`, `None`, `nan` are ids like any other (a
country code, an item name); only an empty field is missing. Every column is read (not only the
mapped ones) so that a row with more fields than the header is an error naming its line (or, with
`cleaning.on_invalid: drop`, a counted drop: extra_fields.py), and a blank row (every field empty) is
told apart from a row with missing ids.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.data.ingest import extra_fields as extra
from recsys.errors import DataError

FORMATS = {"csv": ",", "tsv": "\t", "whitespace": r"\s+", "parquet": None, "adjacency": None}
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "whitespace",
    ".dat": "whitespace",
    ".inter": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
CHUNK_ROWS = 500_000  # rows per chunk: the parser briefly holds them as Python strings (~100 MB)
COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz")  # pandas reads these by extension
BLANK = "\x00blank"  # chunk column: True where every field of the row is empty (a blank line)
# What a damaged, mislabelled or unreadable text file raises from pandas or the decompressors.
TEXT_ERRORS = (pd.errors.ParserError, ValueError, OSError, EOFError, zipfile.BadZipFile)
LIKELY_SEPS = (";", "\t", "|", ",")
ON_INVALID_HINT = "; or set cleaning.on_invalid: drop to drop and count such rows"


def infer_format(path: Path, fmt: str | None) -> str:
    """The configured format, or the one the extension implies (`.csv`, `.tsv`, `.txt`, `.parquet`)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise DataError(f"{path}: format {fmt!r} is not one of {', '.join(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() not in COMPRESSIONS]
    if suffixes and suffixes[-1] in EXTENSIONS:
        return EXTENSIONS[suffixes[-1]]
    raise DataError(
        f"{path}: cannot tell the format from the extension; set format: to one of {', '.join(FORMATS)}"
    )


def check_file(path: Path) -> Path:
    """The path, if it is a readable, non-empty file; a DataError saying what it is otherwise."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(
            f"{path}: is a directory; give one file (a partitioned Parquet data set must be "
            "written as one .parquet file first, e.g. pyarrow.dataset -> pyarrow.parquet.write_table)"
        )
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise DataError(f"{path}: cannot open ({err.strerror or err})") from err
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return path


def text_error(path: Path, fmt: str, err: Exception, extra_fields_hint: str = "") -> DataError:
    """One line for a text file pandas or a decompressor could not read; `extra_fields_hint` ends
    the line of a row with too many fields (how to drop such rows instead, where that exists)."""
    if isinstance(err, pd.errors.EmptyDataError):
        return DataError(f"{path}: file is empty")
    if isinstance(err, UnicodeDecodeError):
        why = f"not {err.encoding} text (byte {err.object[err.start : err.start + 1]!r}); set data.encoding"
    else:
        why = " ".join(str(err).split()) or type(err).__name__
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", why)
        if fields:
            want, line, saw = fields.groups()
            return DataError(
                f"{path}: line {line} has {saw} fields, the first row {want} "
                "(an unquoted separator inside a field? quote it, or set data.sep)"
                + extra_fields_hint
            )
    return DataError(f"{path}: cannot read as {fmt} text ({why})")


def _text_kwargs(sep: str, header: bool, encoding: str) -> dict:
    # Blank lines are kept (as empty rows) so row numbers match the file and nothing vanishes uncounted.
    return {
        "sep": sep,
        "header": 0 if header else None,
        "encoding": encoding,
        "skip_blank_lines": False,
        "engine": "c" if len(sep) == 1 or sep == r"\s+" else "python",
        "keep_default_na": False,  # `NA`, `null`, `nan` are ids; only an empty field is missing
    }


def found_columns(path: Path, fmt: str, sep: str | None, header: bool, encoding: str) -> list:
    """Column names (header files, Parquet) or positions 0..n-1 (header-less text) of the file."""
    if fmt == "parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as err:
            raise DataError(f"{path}: cannot read as Parquet ({err})") from err
    try:
        first = pd.read_csv(path, nrows=0 if header else 1, **_text_kwargs(sep, header, encoding))
    except TEXT_ERRORS as err:
        raise text_error(path, fmt, err) from err
    return [str(c) for c in first.columns] if header else list(range(first.shape[1]))


def resolve_columns(
    path: Path, found: list, wanted: Mapping[str, str | int | None], header: bool
) -> dict[str, str | int]:
    """field -> column of the file for every mapped field; a DataError lists the columns found.

    Integers are positions (the only way to name a column of a file without a header), strings names.
    """
    out: dict[str, str | int] = {}
    for field, column in wanted.items():
        if column is None:
            continue
        if not header:
            if not _is_position(column):
                raise DataError(
                    f"{path}: columns.{field}={column!r} is a name, but the file has no header "
                    f"(header: false); give a position 0..{len(found) - 1} or set header: true"
                )
            if int(column) >= len(found):
                mapped = sorted((int(c), f) for f, c in wanted.items() if _is_position(c))
                need = mapped[-1][0] + 1
                contiguous = [p for p, _ in mapped] == list(range(need))
                names = ", ".join(f if contiguous else f"{f} at {p}" for p, f in mapped)
                raise DataError(f"{path}: expected {need} columns ({names}), found {len(found)}")
            out[field] = int(column)
            continue
        if isinstance(column, int) and 0 <= column < len(found):
            column = found[column]
        if column not in found:
            raise DataError(
                f"{path}: column {column!r} (columns.{field}) not found; columns found: "
                + ", ".join(str(c) for c in found)
                + _separator_hint(found)
            )
        out[field] = column
    return out


def _separator_hint(found: list) -> str:
    """A header read as one column that holds a likely delimiter: the file's delimiter differs."""
    if len(found) != 1:
        return ""
    for sep in LIKELY_SEPS:
        if sep in str(found[0]):
            return f"; the file seems to be {sep!r}-separated: set data.sep"
    return ""


def _is_position(column: str | int) -> bool:
    return isinstance(column, int) or (isinstance(column, str) and column.isdigit())


def iter_text(
    path: Path,
    sep: str,
    header: bool,
    columns: dict[str, str | int],
    encoding: str = "utf-8",
    chunk_rows: int = CHUNK_ROWS,
    extra_fields: str = "error",
) -> Iterator[pd.DataFrame]:
    """Chunks of the mapped columns as Arrow-backed strings, one frame column per field, plus
    `BLANK`. All columns are parsed: with `usecols` pandas would silently cut a row with too many
    fields; without, it raises naming the line (`extra_fields="error"`), or skips it and each chunk
    gets it back as a placeholder flagged in an `EXTRA_FIELDS` column (`"drop"`, extra_fields.py)."""
    drop = extra_fields == "drop"
    try:
        reader = pd.read_csv(
            path,
            dtype="string[pyarrow]",
            chunksize=chunk_rows,
            on_bad_lines="warn" if drop else "error",
            **_text_kwargs(sep, header, encoding),
        )
        if not drop:
            yield from (_fields(chunk, header, columns, path) for chunk in reader)
            return
        rows, named, total = 0, [], 0  # rows yielded so far; skipped lines for the log
        for chunk, skipped in extra.caught_chunks(reader):
            frame = _fields(chunk, header, columns, path)
            frame = extra.put_back(frame, [line - header for line, _, _ in skipped], rows + 1)
            named += skipped[: extra.MAX_LOGGED - len(named)]
            total += len(skipped)
            rows += len(frame)
            yield frame
        extra.log_skipped(path, named, total)
    except TEXT_ERRORS as err:
        raise text_error(path, f"{sep!r}-separated", err, ON_INVALID_HINT) from err


def _fields(
    chunk: pd.DataFrame | None, header: bool, columns: dict[str, str | int], path: Path
) -> pd.DataFrame:
    """The mapped columns of a chunk (None: no rows) under their field names, plus `BLANK`."""
    if chunk is None:
        empty = {f: pd.Series([], dtype="string[pyarrow]") for f in columns}
        return pd.DataFrame({**empty, BLANK: np.zeros(0, dtype=bool)})
    extra.refuse_shifted_first_row(chunk, path)
    if not header:
        chunk.columns = list(range(chunk.shape[1]))
    blank = (chunk.fillna("") == "").all(axis=1).to_numpy(bool)
    return pd.DataFrame({**{f: chunk[c] for f, c in columns.items()}, BLANK: blank})


def describe_column(name: str, column: str | int) -> str:
    """`column 'rating'`, or `column 'stars' (rating)` / `column 2 (rating)` when renamed."""
    return f"column {column!r}" if column == name else f"column {column!r} ({name})"


def read_frame(
    path: Path,
    fmt: str | None = None,
    header: bool = True,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """A whole small table (side features) as strings; Parquet keeps its types."""
    path = check_file(path)
    fmt = infer_format(path, fmt)
    if fmt == "parquet":
        found_columns(path, fmt, None, header, encoding)  # an unreadable file: a DataError
        try:
            return pq.read_table(path).to_pandas()
        except (pa.ArrowException, OSError) as err:
            raise DataError(f"{path}: cannot read as Parquet ({err})") from err
    if fmt == "adjacency":
        raise DataError(f"{path}: format 'adjacency' is for interaction files, not side features")
    sep = sep or FORMATS[fmt]
    try:
        frame = pd.read_csv(path, dtype=str, **_text_kwargs(sep, header, encoding))
    except TEXT_ERRORS as err:
        raise text_error(path, fmt, err) from err
    if not header:
        frame.columns = list(range(frame.shape[1]))
    return frame


def read_delimited(
    path: Path, sep: str, names: list[str], min_columns: int | None = None, encoding: str = "utf-8"
) -> pd.DataFrame:
    """A header-less delimited file with the given column names; wrong shapes raise DataError."""
    path = check_file(path)
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=None,
            engine="python" if len(sep) > 1 else "c",
            encoding=encoding,
            dtype=str,
        )
    except TEXT_ERRORS as err:
        raise text_error(path, f"{sep!r}-separated", err) from err
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

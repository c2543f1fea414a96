"""Rows with more fields than the first row, read with `cleaning.on_invalid: drop`.

pandas' C parser skips such a line with `on_bad_lines="warn"` and says so in a ParserWarning
("Skipping line N: expected X fields, saw Y"); a callable `on_bad_lines` would need the python engine,
several times slower. So the warnings of each chunk are caught and parsed, and each skipped line is put
back into its chunk as an empty placeholder row flagged `EXTRA_FIELDS`: row numbers stay those of the
file and cleaning counts the row out (`drop_extra_field_rows`), so the rows read still add up.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.errors import DataError

log = logging.getLogger(__name__)

EXTRA_FIELDS = "\x00extra_fields"  # chunk column: True for placeholders of lines with extra fields
SKIPPED = re.compile(r"Skipping line (\d+): [Ee]xpected (\d+) fields(?: in line \d+)?, saw (\d+)")
MAX_LOGGED = 5  # skipped lines named in the log, per file


def caught_chunks(reader: Iterator[pd.DataFrame]) -> Iterator[tuple[pd.DataFrame | None, list]]:
    """(chunk, [(line, expected, seen), ...]) per read; the last read may skip lines and find no
    chunk (None). Other warnings are passed on unchanged."""
    while True:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            chunk = next(reader, None)
        skipped = []
        for warning in caught:
            found = SKIPPED.findall(str(warning.message))
            if found and issubclass(warning.category, pd.errors.ParserWarning):
                skipped += [tuple(int(x) for x in hit) for hit in found]
            else:
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        if chunk is None and not skipped:
            return
        yield chunk, skipped


def put_back(frame: pd.DataFrame, rows: list[int], first_row: int) -> pd.DataFrame:
    """`frame` (data rows `first_row`.. minus the skipped `rows`) with an empty placeholder row at
    each skipped row and an `EXTRA_FIELDS` column marking them."""
    size = len(frame) + len(rows)
    at = np.asarray(rows, dtype=np.int64) - first_row
    if len(at) and (at.min() < 0 or at.max() >= size):  # pandas reports lines read in this chunk
        raise RuntimeError(f"skipped rows {rows} outside the chunk from row {first_row}")
    placeholder = np.zeros(size, dtype=bool)
    placeholder[at] = True
    if len(at):
        blank = [c for c in frame.columns if pd.api.types.is_bool_dtype(frame[c])]
        frame = frame.set_axis(np.flatnonzero(~placeholder)).reindex(range(size))
        frame[blank] = frame[blank].fillna(False).astype(bool)
    return frame.assign(**{EXTRA_FIELDS: placeholder})


def log_skipped(path: Path, skipped: list[tuple[int, int, int]], total: int) -> None:
    if total:
        named = ", ".join(
            f"line {line} ({seen} fields, expected {want})" for line, want, seen in skipped
        )
        more = f" and {total - len(skipped)} more" if total > len(skipped) else ""
        log.warning(
            "%s: %d rows with more fields than the first row, dropped and counted "
            "(cleaning.on_invalid: drop): %s%s",
            path, total, named, more,
        )  # fmt: skip


def refuse_shifted_first_row(chunk: pd.DataFrame, path: Path) -> None:
    """pandas reads a first data row with more fields than the header as row labels (an implicit
    index) and every later row one field short, without a warning: refused, as no row can be
    dropped to mend it. A chunked reader's own index is a RangeIndex."""
    if not isinstance(chunk.index, pd.RangeIndex):
        fields, extra = chunk.shape[1], chunk.index.nlevels
        raise DataError(
            f"{path}: line 2 has {fields + extra} fields, the header {fields} (an unquoted "
            "separator inside a field? quote it, or set data.sep; or add the missing header names)"
        )

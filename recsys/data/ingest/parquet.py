"""Reading an interaction log from Parquet in chunks, with its types kept (ints stay ints, strings
strings) and the column types recsys cannot use (lists, structs, maps) refused by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.data.ingest.readers import CHUNK_ROWS, describe_column
from recsys.errors import DataError


def _arrow_strings(t: pa.DataType) -> pd.ArrowDtype | None:
    return pd.ArrowDtype(t) if pa.types.is_string(t) or pa.types.is_large_string(t) else None


def check_parquet_types(path: Path, schema: pa.Schema, cols: dict[str, str]) -> None:
    """Ids and values must be scalars: a list, struct or map column has no one id or value per row."""
    for field, column in cols.items():
        kind = schema.field(column).type
        if pa.types.is_nested(kind):
            raise DataError(
                f"{path}: {describe_column(field, column)} holds {kind} values; "
                f"{field} must be one string or number per row"
            )


def _decoded(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Binary columns (strings written without the UTF-8 annotation) as text; bad UTF-8 raises."""
    arrays = [
        a.cast(pa.string()) if pa.types.is_binary(a.type) or pa.types.is_large_binary(a.type) else a
        for a in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def iter_parquet(
    path: Path, columns: dict[str, str | int], chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Chunks of the mapped columns with their Parquet types (ints stay ints, strings stay strings)."""
    schema = pq.read_schema(path)
    cols = {f: schema.names[c] if isinstance(c, int) else c for f, c in columns.items()}
    check_parquet_types(path, schema, cols)
    try:
        for batch in pq.ParquetFile(path).iter_batches(
            batch_size=chunk_rows, columns=sorted(set(cols.values()))
        ):
            frame = _decoded(batch).to_pandas(types_mapper=_arrow_strings)
            yield pd.DataFrame({f: frame[c] for f, c in cols.items()})
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: cannot read as Parquet ({err})") from err

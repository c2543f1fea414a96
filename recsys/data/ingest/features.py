"""Side-feature files for users or items -> a `FeatureTable` aligned with a vocabulary.

Categorical columns become codes (0 = missing or unknown, then categories in sorted order),
multi-valued columns like genres `a|b|c` a multi-hot matrix, numeric columns standardised values
(missing -> 0, the mean). Rows for ids outside the vocabulary are ignored and counted; vocabulary
ids without a row get the missing value, also counted. Ids are read as the interaction reader reads
them: exactly as written, `NA` or `null` included; only an empty field has no id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import torch

from recsys.data.ingest.log_table import canonical_ids
from recsys.data.ingest.readers import describe_column, read_frame, resolve_columns
from recsys.data.ingest.vocab import Vocabulary
from recsys.data.interactions import FeatureTable
from recsys.errors import DataError


@dataclass
class FeatureSpec:
    path: str | None = None  # the file; None = no side features
    format: str | None = None  # csv | tsv | whitespace | parquet; None = from the extension
    header: bool = True  # text: first line holds column names
    sep: str | None = None  # text: explicit delimiter
    encoding: str = "utf-8"
    id: str | int = "id"  # column holding the user / item id
    categorical: list = field(default_factory=list)  # columns with one category each
    multi_hot: list = field(default_factory=list)  # columns with several values, split on multi_sep
    multi_sep: str = "|"
    numeric: list = field(default_factory=list)  # numeric columns, standardised
    title: str | int | None = None  # items: a human-readable name, saved as vocab/item_titles.txt

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> FeatureSpec:
        cfg = {k: v for k, v in dict(cfg or {}).items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise DataError(f"unknown feature keys {unknown}; known: {sorted(known)}")
        spec = cls(**cfg)
        spec.categorical, spec.multi_hot, spec.numeric = (
            list(spec.categorical or []), list(spec.multi_hot or []), list(spec.numeric or [])
        )  # fmt: skip
        return spec


def categorical_codes(values: pd.Series) -> tuple[torch.Tensor, int]:
    """Codes with 0 reserved for missing / unknown; categories in sorted order."""
    text = values.astype(object).where(values.notna(), None)
    text = text.map(lambda v: None if v is None or str(v).strip() == "" else str(v))
    cat = pd.Categorical(text)
    return torch.as_tensor(cat.codes.astype(np.int64) + 1), len(cat.categories) + 1


def multi_hot(values: pd.Series, sep: str) -> tuple[torch.Tensor, list[str]]:
    """(N, V) 0/1 matrix over the sorted set of values found in `a|b|c` strings."""
    tokens = values.astype(object).where(values.notna(), "").astype(str).str.split(sep).explode()
    tokens = tokens.str.strip()
    tokens = tokens[tokens != ""]
    names = sorted(tokens.unique().tolist())
    out = torch.zeros(len(values), len(names), dtype=torch.float32)
    if names:
        rows = torch.as_tensor(np.array(tokens.index, dtype=np.int64))
        cols = torch.as_tensor(pd.Index(names).get_indexer(tokens.to_numpy()))
        out[rows, cols] = 1.0
    return out, names


def standardised(values: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the known values; missing -> 0 (the mean)."""
    known = ~np.isnan(values)
    out = np.zeros(values.shape, dtype=np.float32)
    if known.any():
        mean = values[known].mean()
        std = values[known].std(ddof=1) if known.sum() > 1 else 0.0  # ddof=1 as pandas' .std()
        out[known] = (values[known] - mean) / (std if std > 0 else 1.0)
    return out


def build_features(
    spec: FeatureSpec, vocab: Vocabulary, kind: str, frame: pd.DataFrame | None = None
) -> tuple[FeatureTable, np.ndarray | None, dict[str, Any]]:
    """(table aligned with `vocab`, titles or None, facts for the report) from one feature file,
    or from `frame` when the caller already derived columns from it (MovieLens)."""
    if frame is None:
        frame = read_frame(spec.path, spec.format, spec.header, spec.sep, spec.encoding)
    path = spec.path
    wanted = {
        "id": spec.id,
        **{str(c): c for c in [*spec.categorical, *spec.multi_hot, *spec.numeric]},
    }
    if spec.title is not None:
        wanted["title"] = spec.title
    cols = resolve_columns(path, list(frame.columns), wanted, spec.header)
    check_scalar(frame[cols["id"]], path, describe_column("id", cols["id"]))
    ids = canonical_ids(frame[cols["id"]])
    missing = ids == ""
    duplicate = pd.Index(ids).duplicated(keep="last") & ~missing
    index = vocab.lookup(ids)
    use = ~missing & ~duplicate & (index >= 0)
    facts = {
        "path": str(path),
        "rows_read": len(frame),
        "rows_without_id": int(missing.sum()),
        "rows_duplicate_id_ignored": int(duplicate.sum()),
        "rows_not_in_vocabulary": int((~missing & ~duplicate & (index < 0)).sum()),
        f"{kind}s_without_row": int(len(vocab) - use.sum()),
    }
    rows = frame[use].reset_index(drop=True)
    target = torch.as_tensor(index[use], dtype=torch.int64)
    n = len(vocab)
    table = FeatureTable()
    for column in spec.categorical:
        codes, size = categorical_codes(rows[cols[str(column)]])
        full = torch.zeros(n, dtype=torch.int64)
        full[target] = codes
        table.categorical[str(column)], table.cardinality[str(column)] = full, size
    for column in spec.multi_hot:
        matrix, names = multi_hot(rows[cols[str(column)]], spec.multi_sep)
        full = torch.zeros(n, len(names), dtype=torch.float32)
        full[target] = matrix
        table.multi_hot[str(column)], table.cardinality[str(column)] = full, len(names)
        facts[f"{column}_values"] = names
    for column in spec.numeric:
        raw = rows[cols[str(column)]]
        values = pd.to_numeric(raw, errors="coerce").to_numpy("float64", na_value=np.nan)
        bad = (
            np.isnan(values)
            & raw.notna().to_numpy()
            & (raw.astype(str).str.strip() != "").to_numpy()
        )
        if bad.any():
            at = int(np.flatnonzero(use)[int(bad.argmax())])
            raise DataError(
                f"{path}: row {at + 1}, {describe_column(str(column), cols[str(column)])}: "
                f"{frame[cols[str(column)]].iloc[at]!r} is not a number"
            )
        full = np.full(n, np.nan)
        full[index[use]] = values
        table.numeric[str(column)] = torch.as_tensor(standardised(full))
    titles = None
    if spec.title is not None:
        titles = np.full(n, "", dtype=object)
        text = rows[cols["title"]].fillna("").astype(str)
        broken = text.str.contains("\n", regex=False) | text.str.contains("\r", regex=False)
        facts["titles_line_breaks_replaced"] = int(broken.sum())  # one title per vocabulary line
        titles[index[use]] = text.str.replace(r"\r\n|\r|\n", " ", regex=True).to_numpy()
    return table, titles, facts


def check_scalar(values: pd.Series, path: object, column: str) -> None:
    """A Parquet list/struct/map id column has no one id per row: refuse it by name."""
    nested = values.map(lambda v: isinstance(v, (list, dict, tuple, np.ndarray))).to_numpy(bool)
    if nested.any():
        at = int(nested.argmax())
        raise DataError(
            f"{path}: row {at + 1}, {column}: {values.iloc[at]!r} is a list or struct; "
            "an id must be one string or number"
        )

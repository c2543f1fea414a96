"""Vocabularies: raw ids (strings) <-> contiguous indices, saved with every run as one id per line
(`recsys.run_dir.encode_vocabulary` writes and reads them; a run directory owns its files).

The order is natural: numeric ids sort as numbers (so ids 0..n-1 keep their index), other ids as
strings. It depends only on the set of ids, never on file order or format, which is what makes a
CSV, a TSV and a Parquet copy of one log give the same indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def natural_order(ids: np.ndarray) -> np.ndarray:
    """Permutation sorting raw ids: by integer value when all are integers, else as strings."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    as_str = np.asarray(ids, dtype=str)
    numbers = pd.to_numeric(pd.Series(as_str), errors="coerce")
    if numbers.notna().all() and (numbers == numbers.round()).all():
        return np.lexsort((as_str, numbers.to_numpy()))  # '7' before '007' only as a tie-break
    return np.argsort(as_str, kind="stable")


@dataclass
class Vocabulary:
    ids: np.ndarray  # index -> raw id

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_codes(cls, codes: np.ndarray, raw_ids: np.ndarray) -> tuple[Vocabulary, np.ndarray]:
        """The ids that `codes` use, in natural order, and the code -> index map (-1 = unused)."""
        used = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(raw_ids)))
        raw = np.asarray(raw_ids, dtype=object)[used]
        order = natural_order(raw)
        mapping = np.full(len(raw_ids), -1, dtype=np.int64)
        mapping[used[order]] = np.arange(len(used))
        return cls(raw[order]), mapping

    def lookup(self, raw_ids: np.ndarray) -> np.ndarray:
        """Index of each raw id; -1 where the id is not in the vocabulary."""
        return as_text(self.ids).get_indexer(as_text(raw_ids))


def as_text(ids: np.ndarray) -> pd.Index:
    """Ids as Python strings; numpy's fixed-width `str` arrays would drop trailing NUL characters."""
    return pd.Index([str(x) for x in np.asarray(ids, dtype=object)], dtype=object)

"""Labelled exposures: parsing a `label` column strictly, and down-sampling label-0 training rows.

A label says whether an exposure (shown) converted (1) or not (0). Anything else is an error that
names the column and a row, unless the user maps their values (`{"yes": 1, "no": 0}`), because a
silently mis-read label becomes a silently wrong probability.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from recsys.data.interactions import DataError, Interactions

# 0 == 0.0 == False as dict keys, so numbers and booleans are covered; text forms spelled out.
_IDENTITY = {0: 0, 1: 1, "0": 0, "1": 1, "0.0": 0, "1.0": 1}


def parse_labels(
    values: pd.Series,
    column: str,
    source: str | Path,
    mapping: Mapping | None = None,
) -> Tensor:
    """(N,) float32 0/1 labels; values outside {0, 1} (or outside `mapping`) raise DataError.

    The error names the file, the column, the first offending row (1-based) and its value.
    """
    table = dict(mapping) if mapping else _IDENTITY
    if mapping:
        bad_targets = [v for v in table.values() if v not in (0, 1)]
        if bad_targets:
            raise DataError(
                f"{source}: label mapping for column {column!r} maps to {bad_targets[0]!r}; only 0 and 1 are allowed"
            )
        # Mapping keys given in YAML may be numbers while the column holds strings, and vice versa.
        table = {**table, **{str(k): v for k, v in table.items()}}
    keys = values.map(lambda v: v.strip() if isinstance(v, str) else v)
    mapped = keys.map(lambda v: table.get(v, np.nan) if _hashable(v) else np.nan)
    bad = mapped.isna().to_numpy()
    if bad.any():
        row = int(bad.argmax())
        hint = (
            f"not in the configured label mapping {sorted(map(str, mapping))}"
            if mapping
            else "labels must be 0 or 1; configure a label mapping (e.g. {yes: 1, no: 0}) for other values"
        )
        raise DataError(
            f"{source}: row {row + 1}, column {column!r}: {values.iloc[row]!r} is not a valid label ({hint})"
        )
    return torch.as_tensor(mapped.to_numpy(np.float32))


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def downsample_negatives(
    split: Interactions, keep_rate: float, seed: int
) -> tuple[Interactions, int]:
    """Keep every label-1 row and each label-0 row with probability `keep_rate` (seeded).

    Returns the kept rows and how many were dropped. Predictions trained on the result are mapped
    back to the original base rate by the propensity head: p' = p / (p + (1 - p) / keep_rate).
    """
    if not 0 < keep_rate <= 1:
        raise ValueError(f"label_negative_keep_rate must be in (0, 1], got {keep_rate}")
    if keep_rate == 1 or split.labels is None:
        return split, 0
    gen = torch.Generator().manual_seed(seed + 7919)
    keep = (split.labels > 0) | (torch.rand(len(split), generator=gen) < keep_rate)
    return split.subset(keep), int((~keep).sum())

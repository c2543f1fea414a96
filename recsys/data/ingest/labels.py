"""Labelled exposures: reading a label column into 0/1 (the one place it happens), and
down-sampling label-0 training rows.

A label says whether an exposure (shown) converted (1) or not (0). Without a mapping only 0 and 1
are labels (numbers, number text such as "1.0", or booleans); any other value is an error naming
the file, column, row and value, unless `data.label_map` maps it (`{yes: 1, no: 0}`), because a
silently mis-read label becomes a silently wrong probability.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from recsys.data.interactions import Interactions
from recsys.errors import DataError

# YAML 1.1 (OmegaConf's loader) reads these unquoted words as booleans, so `{yes: 1, no: 0}` written
# in a YAML file arrives with keys True and False; a boolean key matches the words it came from.
YAML_BOOL_WORDS = {True: ("true", "yes", "on"), False: ("false", "no", "off")}
IDENTITY = {("number", 0.0): 0.0, ("number", 1.0): 1.0, ("bool", False): 0.0, ("bool", True): 1.0}


def label_key(value: object) -> tuple | None:
    """A label value or mapping key in comparable form: numbers by value (2, 2.0, "2" are one key),
    booleans as booleans, other text stripped of spaces; None for a missing value."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, numbers.Number):
        number = float(value)
        return None if np.isnan(number) else ("number", number)
    text = str(value).strip()
    if text == "":  # an empty field: text is read with no NA guessing, so it arrives as ""
        return None
    try:
        number = float(text)
    except ValueError:
        return ("text", text)
    return ("text", text) if np.isnan(number) else ("number", number)


def _mapping_table(mapping: Mapping) -> dict[tuple | None, float]:
    table: dict[tuple | None, float] = {}
    for key, target in mapping.items():
        if target not in (0, 1):
            raise DataError(f"label_map: {key!r} maps to {target!r}; a label is 0 or 1")
        keys = [label_key(key)]
        if isinstance(key, bool):
            words = YAML_BOOL_WORDS[key]
            keys += [("text", w) for word in words for w in (word, word.capitalize(), word.upper())]
        for k in keys:
            if table.get(k, float(target)) != float(target):
                raise DataError(f"label_map: {key!r} is given two labels (0 and 1)")
            table[k] = float(target)
    return table


@dataclass(frozen=True)
class LabelMap:
    """How a label column's values become 0/1: the identity on {0, 1}, or a configured mapping
    (`data.label_map`), under which only the mapping's keys are labels."""

    table: dict
    keys: tuple[str, ...] = ()  # the configured keys as written, for messages; () = no mapping

    @classmethod
    def from_config(cls, mapping: Mapping | None) -> LabelMap:
        if not mapping:
            return cls(IDENTITY)
        return cls(_mapping_table(mapping), tuple(str(k) for k in mapping))

    def parse(self, raw: pd.Series) -> np.ndarray:
        """(N,) float64 0/1 labels; NaN where a value is missing or not a label.

        Each distinct value is looked up once, so a chunk of millions of rows costs one factorize.
        """
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        found = [self.table.get(label_key(v), np.nan) for v in uniques]
        found.append(self.table.get(None, np.nan))  # code -1 (missing) picks this last entry
        return np.asarray(found, dtype=np.float64)[codes]

    @property
    def reason(self) -> str:
        """Why a value was refused, for the error that names its file, row and column."""
        if self.keys:
            return f"is not a key of label_map ({', '.join(self.keys)})"
        return "is not 0 or 1 (set data.label_map, e.g. {yes: 1, no: 0}, to read other values)"


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

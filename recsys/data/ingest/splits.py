"""Seeded splits into train / valid / test, each with its own way of carving out validation.

- random: each interaction goes to test / valid / train with the given probabilities (exact counts).
- leave_last_n: per user, the last `test_n` interactions by timestamp are test, the `valid_n` before
  them validation (file order where there is no timestamp); users too short to spare them stay in train.
- temporal: one global cutoff time; rows at or after it are test, rows in [valid_cutoff, cutoff) valid.
- pre-split files (in `interactions_source`): validation is the valid file, or `valid_fraction` of the
  training file at random.

The index functions return sorted row positions, so every split keeps the file order of its rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from recsys.data.interactions import Interactions
from recsys.errors import DataError

METHODS = ("random", "leave_last_n", "temporal")


@dataclass
class SplitSpec:
    method: str = "random"  # random | leave_last_n | temporal (pre-split files ignore it)
    valid_fraction: float = (
        0.1  # random, temporal (when no valid_cutoff), pre-split without valid file
    )
    test_fraction: float = 0.1  # random, temporal (when no cutoff)
    test_n: int = 1  # leave_last_n: last interactions per user held out for test
    valid_n: int = 1  # leave_last_n: the ones before them, for validation
    cutoff: Any = None  # temporal: seconds since epoch or a YYYY-MM-DD date string; None = quantile
    valid_cutoff: Any = None  # temporal: start of validation; None = quantile

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> SplitSpec:
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise DataError(f"unknown split keys {unknown}; known: {sorted(known)}")
        spec = cls(**cfg)
        if spec.method not in METHODS:
            raise DataError(f"split.method={spec.method!r} is not one of {', '.join(METHODS)}")
        return spec


def random_indices(
    n: int, valid_fraction: float, test_fraction: float, seed: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(train, valid, test) sorted positions; a seeded permutation cut at exact counts."""
    if not 0 <= valid_fraction + test_fraction < 1:
        raise ValueError(
            f"valid_fraction + test_fraction must be in [0, 1), got {valid_fraction + test_fraction}"
        )
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    test_idx, valid_idx, train_idx = (
        order[:n_test],
        order[n_test : n_test + n_valid],
        order[n_test + n_valid :],
    )
    return train_idx.sort().values, valid_idx.sort().values, test_idx.sort().values


def random_split(
    log: Interactions, valid_fraction: float, test_fraction: float, seed: int
) -> tuple[Interactions, Interactions, Interactions]:
    """Each interaction goes to test / valid / train with the given probabilities (exact counts)."""
    train, valid, test = random_indices(len(log), valid_fraction, test_fraction, seed)
    return log.subset(train), log.subset(valid), log.subset(test)


def carve_validation(
    train: Interactions, valid_fraction: float, seed: int
) -> tuple[Interactions, Interactions]:
    """Hold out a random fraction of a training split as validation (for pre-split data)."""
    new_train, valid, _ = random_split(train, valid_fraction, 0.0, seed)
    return new_train, valid


def leave_last_n_indices(
    users: np.ndarray, timestamps: np.ndarray | None, test_n: int, valid_n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Per user, the latest `test_n` rows -> test and the `valid_n` before -> valid (ties: file order).

    Users with at most test_n + valid_n rows keep them all in train (counted in the info).
    """
    if test_n < 1 or valid_n < 0:
        raise DataError(
            f"split.test_n must be >= 1 and split.valid_n >= 0, got {test_n}, {valid_n}"
        )
    n = users.shape[0]
    order = (
        np.lexsort((timestamps, users))
        if timestamps is not None
        else np.argsort(users, kind="stable")
    )
    counts = np.bincount(users)
    ends = np.cumsum(counts)
    sorted_users = users[order]
    from_end = ends[sorted_users] - 1 - np.arange(n)  # 0 = the user's latest row
    eligible = counts[sorted_users] > test_n + valid_n
    test = eligible & (from_end < test_n)
    valid = eligible & (from_end >= test_n) & (from_end < test_n + valid_n)
    train = ~(test | valid)
    info = {
        "order": "timestamp, then file order" if timestamps is not None else "file order",
        "users_kept_whole_in_train": int(((counts > 0) & (counts <= test_n + valid_n)).sum()),
    }
    return np.sort(order[train]), np.sort(order[valid]), np.sort(order[test]), info


def to_seconds(value: Any) -> float:
    """A cutoff given as seconds since the epoch or as a date/time string."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(pd.Timestamp(str(value), tz="UTC").timestamp())
    except ValueError as err:
        raise DataError(f"split cutoff {value!r} is neither seconds nor a date") from err


def temporal_indices(
    timestamps: np.ndarray,
    cutoff: Any,
    valid_cutoff: Any,
    test_fraction: float,
    valid_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Global time cutoffs; when not given, the quantiles that leave the given shares of all rows
    after the cutoff (test) and between the two cutoffs (valid)."""
    if timestamps is None:
        raise DataError("split.method=temporal needs a timestamp column (columns.timestamp)")
    test_at = (
        to_seconds(cutoff)
        if cutoff is not None
        else float(np.quantile(timestamps, 1 - test_fraction))
    )
    before = timestamps[timestamps < test_at]
    if valid_cutoff is not None:
        valid_at = to_seconds(valid_cutoff)
    elif before.size == 0:
        valid_at = test_at
    else:  # leave valid_fraction of all rows between valid_at and the cutoff
        share = valid_fraction * timestamps.size / before.size
        valid_at = float(np.quantile(before, max(0.0, 1.0 - share)))
    if valid_at > test_at:
        raise DataError(f"split.valid_cutoff ({valid_at}) is after split.cutoff ({test_at})")
    test = timestamps >= test_at
    valid = (timestamps >= valid_at) & ~test
    info = {"cutoff": test_at, "valid_cutoff": valid_at}
    return (
        np.flatnonzero(~(test | valid)),
        np.flatnonzero(valid),
        np.flatnonzero(test),
        info,
    )


def split_indices(
    spec: SplitSpec, users: np.ndarray, timestamps: np.ndarray | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(train, valid, test) positions of one log and facts for the report."""
    if spec.method == "random":
        parts = random_indices(len(users), spec.valid_fraction, spec.test_fraction, seed)
        train, valid, test = (p.numpy() for p in parts)
        return train, valid, test, {"valid_fraction": spec.valid_fraction, "test_fraction": spec.test_fraction, "seed": seed}  # fmt: skip
    if spec.method == "leave_last_n":
        train, valid, test, info = leave_last_n_indices(
            users, timestamps, spec.test_n, spec.valid_n
        )
        return train, valid, test, {"test_n": spec.test_n, "valid_n": spec.valid_n, **info}
    return temporal_indices(
        timestamps, spec.cutoff, spec.valid_cutoff, spec.test_fraction, spec.valid_fraction
    )

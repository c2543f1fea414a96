"""Rolling cut-off dates and the backtest folds built from them, strictly in time order.

Cut-offs step back from the last one by the label window, so each label window ends where the next
cut-off starts: training labels end at the validation cut-off, validation labels at the test
cut-off, and nothing a fold is tested on was seen while fitting it. Fold 0 tests on the last
cut-off (the run's test metrics); fold f tests f windows earlier (the backtest).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recsys.errors import ConfigError, DataError

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Fold:
    train: tuple[pd.Timestamp, ...]
    valid: pd.Timestamp
    test: pd.Timestamp


def rolling_cutoffs(
    start: pd.Timestamp,
    end: pd.Timestamp,
    window_days: float,
    num_cutoffs: int,
    last_cutoff: str | pd.Timestamp | None = None,
    name: str = "the log",
) -> list[pd.Timestamp]:
    """`num_cutoffs` dates, oldest first, `window_days` apart, the last one `last_cutoff` or (by
    default) the latest date whose whole label window lies inside the data."""
    if window_days <= 0:
        raise ConfigError(f"data.window_days={window_days}: must be > 0 days")
    span = (end - start) / DAY
    if window_days >= span:
        raise DataError(
            f"{name}: data.window_days={window_days} is longer than the data ({span:.1f} days "
            f"from {start} to {end}): no cut-off leaves a full label window"
        )
    latest = end - window_days * DAY
    if last_cutoff is None:
        last = latest
    else:
        last = pd.Timestamp(last_cutoff)
        if not start < last <= end:
            raise DataError(
                f"{name}: data.last_cutoff={last_cutoff} is outside the data ({start} to {end})"
            )
        if last > latest:
            raise DataError(
                f"{name}: the {window_days}-day label window after data.last_cutoff={last_cutoff} "
                f"runs past the end of the data ({end}); the latest cut-off with a full window "
                f"is {latest}"
            )
    cutoffs = [last - k * window_days * DAY for k in range(num_cutoffs)][::-1]
    fit = int((last - start) / (window_days * DAY)) + 1
    if cutoffs[0] <= start:
        raise DataError(
            f"{name}: data.num_cutoffs={num_cutoffs} cut-offs {window_days} days apart do not fit "
            f"after the first event ({start}); at most {max(fit - 1, 0)} do"
        )
    return cutoffs


def backtest_folds(
    cutoffs: list[pd.Timestamp],
    backtest: int,
    window_days: float,
    train_stride_days: float | None = None,
    min_train: int = 1,
) -> list[Fold]:
    """Fold 0 (test = last cut-off) first, then one per earlier test cut-off, `backtest` in all.

    Training cut-offs step back from (validation cut-off - window) by `train_stride_days` (default:
    the window) down to the first cut-off: a shorter stride gives more training rows from the same
    history (each customer seen at several dates), with every label window still ending by the
    validation cut-off."""
    if backtest < 1:
        raise ConfigError(f"data.backtest={backtest}: must be >= 1 (1 = the last cut-off only)")
    need = backtest + 1 + min_train
    if len(cutoffs) < need:
        raise ConfigError(
            f"data.num_cutoffs={len(cutoffs)} is too few for data.backtest={backtest}: each fold "
            f"needs {min_train} training cut-off(s), one validation and one test cut-off "
            f"(num_cutoffs >= {need})"
        )
    stride = window_days if train_stride_days is None else train_stride_days
    if stride <= 0:
        raise ConfigError(f"data.train_stride_days={train_stride_days}: must be > 0 days")
    folds = []
    for f in range(backtest):
        test = len(cutoffs) - 1 - f
        valid = cutoffs[test - 1]
        folds.append(
            Fold(_training_dates(cutoffs[0], valid, window_days, stride), valid, cutoffs[test])
        )
    return folds


def _training_dates(first, valid, window_days: float, stride: float) -> tuple[pd.Timestamp, ...]:
    dates, date = [], valid - window_days * DAY
    while date >= first:
        dates.append(date)
        date -= stride * DAY
    return tuple(dates[::-1])
